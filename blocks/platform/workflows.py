"""Flow inputs and deployment names: the contract between the control plane, which starts
runs, and the flows, which execute them. Services build these; flows accept them.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from blocks.platform.domain import (
    WORKFLOW_APPENV_PROVISIONING,
    WORKFLOW_APPLICATION_ONBOARDING,
    WORKFLOW_BULK_APPENV_PROVISIONING,
    WORKFLOW_SECRET_ROTATION,
    WORKFLOW_SECRET_ROTATION_SWEEP,
)

ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"

# Every deployment is "<flow name>/<DEPLOYMENT_NAME>" (prefect.yaml uses the same names).
DEPLOYMENT_NAME = "idp"
WORK_POOL = "idp-pool"


def deployment_path(workflow: str) -> str:
    return f"{workflow}/{DEPLOYMENT_NAME}"


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApplicationOnboardingRequest(_Request):
    application_id: str = Field(pattern=ID_PATTERN, description="Id of a registered application")


class ApplicationEnvironmentProvisioningRequest(_Request):
    environment_id: str = Field(
        pattern=ID_PATTERN, description="Id of a requested application environment"
    )
    keep_partial: bool = Field(
        False,
        description="When the run fails, leave what it created (repository, secrets, "
        "bindings) instead of removing it",
    )


class SecretRotationRequest(_Request):
    secret_id: str = Field(pattern=ID_PATTERN, description="Id of a rotatable secret")


class SecretRotationSweepRequest(_Request):
    max_concurrency: int = Field(
        10, ge=1, le=200, description="Rotations in flight at once (protects the provider)"
    )
    limit: int | None = Field(None, ge=1, description="Rotate at most this many secrets")


class BulkEnvironmentProvisioningRequest(_Request):
    environment_ids: list[Annotated[str, Field(pattern=ID_PATTERN)]] = Field(
        min_length=1,
        max_length=1000,
        description="Ids of requested (or failed, or provisioned) application environments",
    )
    max_concurrency: int = Field(
        20, ge=1, le=200, description="Environments provisioned at once (protects the providers)"
    )


REQUEST_MODELS: dict[str, type[_Request]] = {
    WORKFLOW_APPLICATION_ONBOARDING: ApplicationOnboardingRequest,
    WORKFLOW_APPENV_PROVISIONING: ApplicationEnvironmentProvisioningRequest,
    WORKFLOW_SECRET_ROTATION: SecretRotationRequest,
    WORKFLOW_SECRET_ROTATION_SWEEP: SecretRotationSweepRequest,
    WORKFLOW_BULK_APPENV_PROVISIONING: BulkEnvironmentProvisioningRequest,
}


def flow_parameters(request: _Request) -> dict[str, object]:
    """Parameters of a flow run: every flow takes one model named ``request``."""
    return {"request": request.model_dump(mode="json")}
