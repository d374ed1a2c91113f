"""What each workflow returns: one model per flow, persisted as the flow run's result.

Results say what exists and where (repository URL, protection, stored secret location
and version, bindings); they never hold a secret value.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from blocks.models import (
    BindingRecord,
    BranchProtectionInfo,
    GitOpsStatus,
    RepositoryInfo,
    StoredSecret,
)
from blocks.platform.domain import ApplicationStatus, EnvironmentStatus, SecretStatus
from tasks.platform.bulk_provisioning import ProvisioningItem
from tasks.platform.sweep import SweepItem


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
