"""What each workflow returns: one model per flow, persisted as the flow run's result.

Results say what exists and where (repository URL, protection, stored secret location
and version, bindings); they never hold a secret value.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from blocks.models import (
    BindingRecord,
    BranchProtectionInfo,
    GitOpsStatus,
    RepositoryInfo,
    StoredSecret,
)
from blocks.platform.domain import ApplicationStatus, EnvironmentStatus, SecretStatus


class RotationOutcome(StrEnum):
    ROTATED = "rotated"
    FAILED = "failed"
    SKIPPED = "skipped"  # another run holds the secret's lock


class SweepItem(BaseModel):
    """One secret's outcome in a sweep."""

    model_config = ConfigDict(frozen=True)

    secret_id: str
    outcome: RotationOutcome
    status: SecretStatus | None = Field(None, description="Secret status the rotation left")
    stored_version: int | None = None
    bindings: int = 0
    error_code: str | None = None
    error: str | None = Field(None, description="Short message; never a secret value")
    retries: int = 0


class ProvisioningOutcome(StrEnum):
    PROVISIONED = "provisioned"
    FAILED = "failed"


class ProvisioningItem(BaseModel):
    """One environment's outcome in a bulk run."""

    model_config = ConfigDict(frozen=True)

    environment_id: str
    outcome: ProvisioningOutcome
    status: EnvironmentStatus | None = Field(None, description="Status the run left")
    repository: str | None = Field(None, description="Full name of the repository")
    secrets: int = 0
    bindings: int = 0
    error_code: str | None = None
    error: str | None = Field(None, description="Short message; never a secret value")
    retries: int = 0
    duration_seconds: float = Field(0.0, ge=0, description="From its first step to its last")


class _Result(BaseModel):
    model_config = ConfigDict(frozen=True)

    flow_run_id: str = Field(description="The run that produced this result")


class ApplicationOnboardingResult(_Result):
    application_id: str
    status: ApplicationStatus
    repository: RepositoryInfo
    files_created: list[str] = Field(description="Seeded files this run created (empty: kept)")


class ApplicationEnvironmentProvisioningResult(_Result):
    environment_id: str
    application_id: str
    status: EnvironmentStatus
    repository: RepositoryInfo
    protection: BranchProtectionInfo
    secrets: list[StoredSecret]
    bindings: list[BindingRecord]
    gitops: GitOpsStatus


class SecretRotationResult(_Result):
    secret_id: str
    status: SecretStatus
    robot: str = Field(description="Harbor robot whose secret was rotated")
    stored: StoredSecret = Field(description="Where the new value is (never the value)")
    bindings: list[BindingRecord]


class SecretRotationSweepResult(_Result):
    due: int = Field(description="Secrets found due")
    rotated: int
    failed: int
    skipped: int = Field(0, description="Locked by another run; left to it")
    items: list[SweepItem]


class BulkEnvironmentProvisioningResult(_Result):
    requested: int = Field(description="Distinct environments in the request")
    provisioned: int
    failed: int
    items: list[ProvisioningItem]
