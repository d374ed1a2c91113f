"""Secret-backend steps of environment provisioning: one SecretBackend call each (the
bodies live in ``tasks/platform/provisioning_steps.py``, shared with the bulk flow).

``provision_secrets`` is create-only and ``create_secret_bindings`` upserts, so both are
safe to run again; ``verify_gitops_reconciliation`` treats "not converged yet" as a
transient condition (``UpstreamTimeout``), so the task's backoff doubles as the polling
interval and the run fails only when reconciliation never converges within its retries.
"""

from __future__ import annotations

from collections.abc import Sequence

from prefect import task

from blocks.models import BindingRecord, GitOpsStatus, StoredSecret
from blocks.ports import SecretBackend
from tasks.platform import provisioning_steps as steps
from tasks.platform.policy import provider_task


@task(
    name="ProvisionSecrets",
    task_run_name="ProvisionSecrets[{environment_id}]",
    **provider_task(),
)
async def provision_secrets(
    backend: SecretBackend, environment_id: str, application_id: str, names: Sequence[str]
) -> list[StoredSecret]:
    """Every named secret of the environment exists in the backend (existing ones kept)."""
    return await steps.provision_secrets(backend, environment_id, application_id, names)


@task(
    name="CreateSecretBindings",
    task_run_name="CreateSecretBindings[{environment_id}]",
    **provider_task(),
)
async def ensure_secret_bindings(
    backend: SecretBackend, environment_id: str, secret_names: Sequence[str]
) -> list[BindingRecord]:
    """Each secret of the environment is bound to it (one binding per secret and target)."""
    return await steps.ensure_secret_bindings(backend, environment_id, secret_names)


@task(
    name="VerifyGitOpsReconciliation",
    task_run_name="VerifyGitOpsReconciliation[{environment_id}]",
    **provider_task(),
)
async def verify_gitops_reconciliation(
    backend: SecretBackend, environment_id: str, repository: str
) -> GitOpsStatus:
    """GitOps has reconciled the environment's repository (polled through retries)."""
    return await steps.verify_gitops_reconciliation(backend, environment_id, repository)
