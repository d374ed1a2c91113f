"""Secret-backend steps of environment provisioning: one SecretBackend call each.

``provision_secrets`` is create-only and ``create_secret_bindings`` upserts, so both are
safe to run again; ``verify_gitops_reconciliation`` treats "not converged yet" as a
transient condition (``UpstreamTimeout``), so the task's backoff doubles as the polling
interval and the run fails only when reconciliation never converges within its retries.
"""

from __future__ import annotations

from collections.abc import Sequence

from prefect import task

from blocks.base import BindingRecord, GitOpsStatus, SecretBackend
from core.domain import StoredSecret
from core.errors import UpstreamTimeout, shorten
from tasks.policy import in_thread, provider_task


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


@task(
    name="ProvisionSecrets",
    task_run_name="ProvisionSecrets[{environment_id}]",
    **provider_task(),
)
async def provision_secrets(
    backend: SecretBackend, environment_id: str, application_id: str, names: Sequence[str]
) -> list[StoredSecret]:
    """Every named secret of the environment exists in the backend (existing ones kept)."""
    return await in_thread(backend.provision_secrets, environment_id, application_id, list(names))


@task(
    name="CreateSecretBindings",
    task_run_name="CreateSecretBindings[{environment_id}]",
    **provider_task(),
)
async def ensure_secret_bindings(
    backend: SecretBackend, environment_id: str, secret_names: Sequence[str]
) -> list[BindingRecord]:
    """Each secret of the environment is bound to it (one binding per secret and target)."""
    bindings = environment_bindings(environment_id, secret_names)
    return await in_thread(backend.create_secret_bindings, bindings)


@task(
    name="VerifyGitOpsReconciliation",
    task_run_name="VerifyGitOpsReconciliation[{environment_id}]",
    **provider_task(),
)
async def verify_gitops_reconciliation(
    backend: SecretBackend, environment_id: str, repository: str
) -> GitOpsStatus:
    """GitOps has reconciled the environment's repository (polled through retries)."""
    status = await in_thread(backend.verify_gitops, environment_id, repository)
    if not status.reconciled:
        raise UpstreamTimeout(
            shorten(f"GitOps reconciliation of {repository!r} has not converged: {status.message}"),
            details={"environment_id": environment_id, "repository": repository},
        )
    return status
