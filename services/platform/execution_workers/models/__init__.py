"""Request and response models of execution-workers, one module per resource."""

from services.platform.execution_workers.models.appenv import (
    BindingItem,
    BindingKey,
    BranchProtectionRequest,
    GitOpsVerifyRequest,
    SecretBindingsDeleteRequest,
    SecretBindingsRequest,
    SecretBindingsResult,
    SecretsDeleteRequest,
    SecretsDeleteResult,
    SecretsRequest,
    SecretsResult,
)
from services.platform.execution_workers.models.github import (
    FilesRequest,
    FilesResult,
    RepositoryDeleteRequest,
    RepositoryDeleteResult,
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
    "BindingKey",
    "BindingTarget",
    "BindingsUpdateRequest",
    "BindingsUpdateResult",
    "BranchProtectionRequest",
    "FilesRequest",
    "FilesResult",
    "GitOpsVerifyRequest",
    "HarborRotation",
    "NewValue",
    "RepositoryDeleteRequest",
    "RepositoryDeleteResult",
    "RepositoryRequest",
    "SecretBindingsDeleteRequest",
    "SecretBindingsRequest",
    "SecretBindingsResult",
    "SecretsDeleteRequest",
    "SecretsDeleteResult",
    "SecretsRequest",
    "SecretsResult",
    "StoredRef",
]
