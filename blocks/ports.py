"""The provider interfaces tasks program against.

A deployment picks an implementation by choosing a block: the direct provider blocks
(GitHub, Harbor, Vault, HTTP endpoints) or the ExecutionWorkers block that routes the
same calls through the execution-workers service. Every method is an ``ensure``: calling
it twice leaves one side effect.
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
        """Delete ``name`` from the organization; False when it did not exist (the undo of
        ``ensure_repository``)."""


class RegistryProvider(ABC):
    @abstractmethod
    def find_robot(self, name: str, *, project: str | None = None) -> RobotAccount:
        """Look a robot account up by its short name (system level when project is None)."""

    @abstractmethod
    def refresh_robot_secret(self, robot_id: int) -> SecretStr:
        """Issue a new secret for the robot; the old one stops working at once."""


class SecretBackend(ABC):
    @abstractmethod
    def provision_secrets(
        self, environment_id: str, application_id: str, names: Sequence[str]
    ) -> list[StoredSecret]:
        """Materialize the environment's secrets (create-only: existing ones are kept)."""

    @abstractmethod
    def create_secret_bindings(self, bindings: Sequence[BindingRecord]) -> list[BindingRecord]:
        """Ensure each binding exists (upsert by secret, environment and target)."""

    @abstractmethod
    def verify_gitops(self, environment_id: str, repository: str) -> GitOpsStatus:
        """Ask whether the environment's GitOps reconciliation has converged."""

    @abstractmethod
    def store_secret_value(self, secret_id: str, value: SecretStr) -> StoredSecret:
        """Store a new value of ``secret_id``; returns where, never the value."""

    @abstractmethod
    def update_secret_bindings(
        self, secret_id: str, stored: StoredSecret, bindings: Sequence[BindingSpec]
    ) -> list[BindingRecord]:
        """Point every binding of ``secret_id`` at the stored version (after a rotation)."""

    @abstractmethod
    def delete_secrets_if_present(self, environment_id: str, names: Sequence[str]) -> list[str]:
        """Delete the environment's provisioned secrets ``names`` (every version); returns
        the names that existed (the undo of ``provision_secrets``)."""

    @abstractmethod
    def delete_secret_bindings_if_present(
        self, bindings: Sequence[BindingRecord]
    ) -> list[BindingRecord]:
        """Remove each binding (by secret, environment and target); returns those that
        existed (the undo of ``create_secret_bindings``)."""
