"""Bodies of ``/appenv/*``: branch protection, secrets and bindings (ensure and delete), the
GitOps check."""

from __future__ import annotations

from pydantic import BaseModel, Field

from blocks.models import BindingRecord, StoredSecret
from services.platform.execution_workers.models.common import (
    ApplicationId,
    EnvironmentId,
    RepositoryName,
    Request,
    SecretName,
    Target,
)


class BranchProtectionRequest(Request):
    repository: RepositoryName
    branch: str | None = Field(
        None,
        min_length=1,
        max_length=255,
        pattern=r"^[A-Za-z0-9._/-]+$",
        description="Branch to protect; the default branch when absent",
    )
    required_approving_review_count: int = Field(
        1, ge=1, le=6, description="Approving reviews a pull request needs (GitHub allows 6)"
    )
    environment_id: EnvironmentId | None = Field(
        None, description="Environment of the repository; derived from appenv-<id> names"
    )


class SecretsRequest(Request):
    environment_id: EnvironmentId
    application_id: ApplicationId
    secrets: list[SecretName] = Field(
        max_length=100, description="Names to materialize; existing secrets are kept"
    )


class SecretsResult(BaseModel):
    environment_id: str
    secrets: list[StoredSecret] = Field(description="Where each secret lives; never values")


class SecretsDeleteRequest(Request):
    environment_id: EnvironmentId
    secrets: list[SecretName] = Field(
        max_length=100, description="Names to delete with every version; absent ones are skipped"
    )


class SecretsDeleteResult(BaseModel):
    environment_id: str
    deleted: list[str] = Field(description="The names that existed (and are now deleted)")


class BindingItem(Request):
    secret_id: SecretName
    environment_id: EnvironmentId
    target: Target
    version: int | None = Field(
        None, ge=1, description="Version to bind; absent keeps the binding's current one"
    )


class SecretBindingsRequest(Request):
    bindings: list[BindingItem] = Field(
        min_length=1, max_length=500, description="Upserted by (secret, environment, target)"
    )


class SecretBindingsResult(BaseModel):
    bindings: list[BindingRecord]


class BindingKey(Request):
    secret_id: SecretName
    environment_id: EnvironmentId
    target: Target


class SecretBindingsDeleteRequest(Request):
    bindings: list[BindingKey] = Field(
        min_length=1, max_length=500, description="Removed by (secret, environment, target)"
    )


class GitOpsVerifyRequest(Request):
    environment_id: EnvironmentId
    repository: RepositoryName
