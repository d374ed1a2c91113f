"""What the provider blocks return and take: repositories, protection rules, robots, stored
secrets and bindings, as the platform sees them (never a secret value).

The shared provider blocks (GitHub, Harbor, Vault, the secret system's HTTP endpoints)
build these from vendor payloads; every family's tasks and flows use them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BindingSpec(_Frozen):
    """Where a secret is delivered in an environment (for example a Kubernetes secret)."""

    environment_id: str = Field(min_length=1, max_length=64)
    target: str = Field(
        min_length=1, max_length=200, description="Delivery target, e.g. 'k8s:payments/registry'"
    )


class RepositoryInfo(_Frozen):
    """A repository as the platform sees it; built by the GitHub block."""

    full_name: str
    name: str
    html_url: str
    default_branch: str
    private: bool
    created: bool = Field(description="True when this call created it, False when adopted")


class BranchProtectionInfo(_Frozen):
    repository: str
    branch: str
    required_approving_review_count: int
    changed: bool = Field(description="False when the rule already matched")


class RobotAccount(_Frozen):
    id: int
    name: str
    level: str
    project: str | None = None
    disabled: bool = False


class StoredSecret(_Frozen):
    """Where a secret value was stored, never the value itself."""

    backend: str
    path: str
    version: int


class BindingRecord(BaseModel):
    """A binding as the secret system reports it after an ensure/update."""

    model_config = ConfigDict(frozen=True)

    secret_id: str
    environment_id: str
    target: str
    version: int | None = None


class GitOpsStatus(BaseModel):
    model_config = ConfigDict(frozen=True)

    environment_id: str
    repository: str
    reconciled: bool
    revision: str | None = None
    message: str = ""
