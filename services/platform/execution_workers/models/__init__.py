"""Request and response models of execution-workers, one module per resource."""

from services.platform.execution_workers.models.appenv import (
    BindingItem,
    BranchProtectionRequest,
    GitOpsVerifyRequest,
    SecretBindingsRequest,
    SecretBindingsResult,
    SecretsRequest,
    SecretsResult,
)
from services.platform.execution_workers.models.github import (
    FilesRequest,
    FilesResult,
    RepositoryRequest,
)
from services.platform.execution_workers.models.secrets import (
    AlreadyStored,
    BindingsUpdateRequest,
    BindingsUpdateResult,
    BindingTarget,
    HarborRotation,
    NewValue,
    StoredRef,
)

__all__ = [
    "AlreadyStored",
    "BindingItem",
    "BindingTarget",
    "BindingsUpdateRequest",
    "BindingsUpdateResult",
    "BranchProtectionRequest",
    "FilesRequest",
    "FilesResult",
    "GitOpsVerifyRequest",
    "HarborRotation",
    "NewValue",
    "RepositoryRequest",
    "SecretBindingsRequest",
    "SecretBindingsResult",
    "SecretsRequest",
    "SecretsResult",
    "StoredRef",
]
