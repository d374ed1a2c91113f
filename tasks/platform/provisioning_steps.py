"""The provider steps of environment provisioning, written once and used twice.

ApplicationEnvironmentProvisioning calls them as tasks (``tasks/platform/git.py``,
``tasks/platform/secrets.py``: one task run per step, Prefect retries); BulkEnvironmentProvisioning
calls the same functions in code for hundreds of environments inside a few batch tasks
(``tasks/platform/bulk_provisioning.py``), wrapping each in ``retrying`` with the same policy. The
``limiter`` bounds the worker threads the sync blocks run in (the bulk flow sizes it to its
concurrency; ``None`` is anyio's default of 40).
"""

from __future__ import annotations

from collections.abc import Sequence

from blocks.models import (
    BindingRecord,
    BranchProtectionInfo,
    GitOpsStatus,
    RepositoryInfo,
    StoredSecret,
)
from blocks.ports import GitProvider, SecretBackend
from core.errors import UpstreamTimeout, shorten
from tasks.platform.policy import in_limited_thread
from tasks.platform.rotation_steps import Limiter


def binding_target(environment_id: str, secret_name: str) -> str:
    """Where an environment's secret is delivered: a Kubernetes secret of that name."""
    return f"k8s:{environment_id}/{secret_name}"


def environment_bindings(environment_id: str, secret_names: Sequence[str]) -> list[BindingRecord]:
    return [
        BindingRecord(
            secret_id=name,
            environment_id=environment_id,
            target=binding_target(environment_id, name),
        )
        for name in secret_names
    ]


async def ensure_repository(
    git: GitProvider, name: str, description: str = "", *, limiter: Limiter = None
) -> RepositoryInfo:
    """The private repository ``name`` exists in the organization (created or adopted)."""
    return await in_limited_thread(
        limiter, git.ensure_repository, name, description=description, private=True
    )


async def ensure_branch_protection(
    git: GitProvider,
    repository: str,
    required_approving_review_count: int = 1,
    *,
    branch: str | None = None,
    limiter: Limiter = None,
) -> BranchProtectionInfo:
    """``branch`` of ``repository`` requires at least N approving reviews. Pass the default
    branch when it is known (the repository step returns it): the provider then need not
    read the repository to find it."""
    return await in_limited_thread(
        limiter,
        git.ensure_branch_protection,
        repository,
        branch=branch,
        required_approving_review_count=required_approving_review_count,
    )


async def provision_secrets(
    backend: SecretBackend,
    environment_id: str,
    application_id: str,
    names: Sequence[str],
    *,
    limiter: Limiter = None,
) -> list[StoredSecret]:
    """Every named secret of the environment exists in the backend (existing ones kept)."""
    return await in_limited_thread(
        limiter, backend.provision_secrets, environment_id, application_id, list(names)
    )


async def ensure_secret_bindings(
    backend: SecretBackend,
    environment_id: str,
    secret_names: Sequence[str],
    *,
    limiter: Limiter = None,
) -> list[BindingRecord]:
    """Each secret of the environment is bound to it (one binding per secret and target)."""
    bindings = environment_bindings(environment_id, secret_names)
    return await in_limited_thread(limiter, backend.create_secret_bindings, bindings)


async def verify_gitops_reconciliation(
    backend: SecretBackend, environment_id: str, repository: str, *, limiter: Limiter = None
) -> GitOpsStatus:
    """GitOps reconciled the repository; "not yet" is transient, so retries poll it."""
    status = await in_limited_thread(limiter, backend.verify_gitops, environment_id, repository)
    if not status.reconciled:
        raise UpstreamTimeout(
            shorten(f"GitOps reconciliation of {repository!r} has not converged: {status.message}"),
            details={"environment_id": environment_id, "repository": repository},
        )
    return status
