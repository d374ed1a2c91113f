"""The provider interfaces tasks program against, one per role.

A deployment picks an implementation of each role by choosing a block document
(``IDP_GIT_BLOCK``, ``IDP_REGISTRY_BLOCK``, ``IDP_SECRET_BACKEND_BLOCK``,
``IDP_SECRET_BINDINGS_BLOCK``, ``IDP_GITOPS_BLOCK``): the direct provider blocks (GitHub,
Harbor, Vault, the secret system's HTTP endpoints) or the ExecutionWorkers block, which
routes the same calls through the execution-workers service.

Every method is safe to call again: an ``ensure_*`` leaves one side effect however often
it runs, a ``delete_*_if_present`` (the undo of an ensure, run by a compensation) treats
"already gone" as done.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence

from pydantic import SecretStr

from blocks.models import (
    BindingRecord,
    BindingSpec,
    BranchProtectionInfo,
    GitOpsStatus,
    RepositoryInfo,
    RobotAccount,
    StoredSecret,
)


class GitProvider(ABC):
    """Repositories of the organization."""

    @abstractmethod
    def ensure_repository(
        self, name: str, *, description: str = "", private: bool = True
    ) -> RepositoryInfo:
        """Create ``name`` in the organization, or adopt it when it already exists."""

    @abstractmethod
    def ensure_branch_protection(
        self,
        repository: str,
        *,
        branch: str | None = None,
        required_approving_review_count: int = 1,
    ) -> BranchProtectionInfo:
        """Protect ``branch`` (default branch when None) with at least N approving reviews."""

    @abstractmethod
    def ensure_files(self, repository: str, files: Mapping[str, str], *, message: str) -> list[str]:
        """Create the files that are missing on the default branch; return the paths created."""

    @abstractmethod
    def delete_repository_if_present(self, name: str) -> bool:
        """Delete ``name`` from the organization; False when it did not exist."""


class RegistryProvider(ABC):
    """Robot accounts of the container registry."""

    @abstractmethod
    def find_robot(self, name: str, *, project: str | None = None) -> RobotAccount:
        """Look a robot account up by its short name (system level when project is None)."""

    @abstractmethod
    def refresh_robot_secret(self, robot_id: int) -> SecretStr:
        """Issue a new secret for the robot; the old one stops working at once."""


class SecretStore(ABC):
    """Where secret values live (Vault, or the secret system's own store)."""

    @abstractmethod
    def provision_secrets(
        self, environment_id: str, application_id: str, names: Sequence[str]
    ) -> list[StoredSecret]:
        """Materialize the environment's secrets (create-only: existing ones are kept)."""

    @abstractmethod
    def store_secret_value(self, secret_id: str, value: SecretStr) -> StoredSecret:
        """Store a new value of ``secret_id``; returns where, never the value."""

    @abstractmethod
    def delete_secrets_if_present(self, environment_id: str, names: Sequence[str]) -> list[str]:
        """Delete the environment's provisioned secrets ``names`` (every version); returns
        the names that existed."""


class SecretBindings(ABC):
    """Where each secret is delivered (a Kubernetes secret of an environment, ...)."""

    @abstractmethod
    def create_secret_bindings(self, bindings: Sequence[BindingRecord]) -> list[BindingRecord]:
        """Ensure each binding exists (upsert by secret, environment and target)."""

    @abstractmethod
    def update_secret_bindings(
        self, secret_id: str, stored: StoredSecret, bindings: Sequence[BindingSpec]
    ) -> list[BindingRecord]:
        """Point every binding of ``secret_id`` at the stored version (after a rotation)."""

    @abstractmethod
    def delete_secret_bindings_if_present(
        self, bindings: Sequence[BindingRecord]
    ) -> list[BindingRecord]:
        """Remove each binding (by secret, environment and target); returns those that
        existed."""


class GitOpsVerifier(ABC):
    """Whether GitOps has reconciled what a workflow changed."""

    @abstractmethod
    def verify_gitops(self, environment_id: str, repository: str) -> GitOpsStatus:
        """Ask whether the environment's GitOps reconciliation has converged."""
