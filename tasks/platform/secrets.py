"""Secret steps of environment provisioning: values, bindings, the GitOps check.

``ProvisionSecrets`` is create-only and ``CreateSecretBindings`` upserts, so both are safe
to run again; each declares its undo (``DeleteSecrets``, ``DeleteSecretBindings``), which
a compensation runs. ``VerifyGitOpsReconciliation`` treats "not converged yet" as a
transient condition (``UpstreamTimeout``), so the step's backoff doubles as the polling
interval and the run fails only when reconciliation never converges within its retries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from blocks.models import BindingRecord, GitOpsStatus, StoredSecret
from blocks.ports import GitOpsVerifier, SecretBindings, SecretStore
from core.errors import UpstreamTimeout, shorten
from core.steps import Step, Undo
from tasks.platform.calls import in_thread
from tasks.platform.policies import PROVIDER


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


async def provision_secrets(
    secrets: SecretStore, environment_id: str, application_id: str, names: Sequence[str]
) -> list[StoredSecret]:
    """Every named secret of the environment exists in the store (existing ones kept)."""
    return await in_thread(secrets.provision_secrets, environment_id, application_id, list(names))


async def delete_secrets(
    secrets: SecretStore, environment_id: str, names: Sequence[str]
) -> list[str]:
    """The environment's secrets ``names`` no longer exist (returns those that did)."""
    return await in_thread(secrets.delete_secrets_if_present, environment_id, list(names))


async def create_secret_bindings(
    bindings: SecretBindings, environment_id: str, secret_names: Sequence[str]
) -> list[BindingRecord]:
    """Each secret of the environment is bound to it (one binding per secret and target)."""
    wanted = environment_bindings(environment_id, secret_names)
    return await in_thread(bindings.create_secret_bindings, wanted)


async def delete_secret_bindings(
    bindings: SecretBindings, environment_id: str, secret_names: Sequence[str]
) -> list[BindingRecord]:
    """The environment's bindings of ``secret_names`` no longer exist."""
    wanted = environment_bindings(environment_id, secret_names)
    return await in_thread(bindings.delete_secret_bindings_if_present, wanted)


async def verify_gitops_reconciliation(
    gitops: GitOpsVerifier, environment_id: str, repository: str
) -> GitOpsStatus:
    """GitOps reconciled the repository; "not yet" is transient, so retries poll it."""
    status = await in_thread(gitops.verify_gitops, environment_id, repository)
    if not status.reconciled:
        raise UpstreamTimeout(
            shorten(f"GitOps reconciliation of {repository!r} has not converged: {status.message}"),
            details={"environment_id": environment_id, "repository": repository},
        )
    return status


# The environment's secrets and bindings belong to it: rolling its provisioning back
# removes them (values and bindings of other environments are never named).
def _undo_secrets(result: list[StoredSecret], call: Mapping[str, Any]) -> dict[str, Any]:
    return {"environment_id": call["environment_id"], "names": list(call["names"])}


def _undo_bindings(result: list[BindingRecord], call: Mapping[str, Any]) -> dict[str, Any]:
    return {"environment_id": call["environment_id"], "secret_names": list(call["secret_names"])}


DELETE_SECRETS = Step(
    "DeleteSecrets", delete_secrets, PROVIDER, run_name="DeleteSecrets[{environment_id}]"
)
DELETE_SECRET_BINDINGS = Step(
    "DeleteSecretBindings",
    delete_secret_bindings,
    PROVIDER,
    run_name="DeleteSecretBindings[{environment_id}]",
)
PROVISION_SECRETS = Step(
    "ProvisionSecrets",
    provision_secrets,
    PROVIDER,
    run_name="ProvisionSecrets[{environment_id}]",
    undo=Undo(DELETE_SECRETS, _undo_secrets),
)
CREATE_SECRET_BINDINGS = Step(
    "CreateSecretBindings",
    create_secret_bindings,
    PROVIDER,
    run_name="CreateSecretBindings[{environment_id}]",
    undo=Undo(DELETE_SECRET_BINDINGS, _undo_bindings),
)
VERIFY_GITOPS_RECONCILIATION = Step(
    "VerifyGitOpsReconciliation",
    verify_gitops_reconciliation,
    PROVIDER,
    run_name="VerifyGitOpsReconciliation[{environment_id}]",
)
