"""``/appenv/*`` (seed 002): branch protection, secrets, bindings, the GitOps check.

Each handler validates its input (the models), opens its span, calls one block, and
reports its ``appenv_*`` event with ``success`` or ``error``. ``/secrets/delete`` and
``/secret-bindings/delete`` undo ``/secrets`` and ``/secret-bindings``; they report the
same events with ``"operation": "delete"``.
"""

from __future__ import annotations

from fastapi import APIRouter

from blocks.models import BindingRecord, BranchProtectionInfo, GitOpsStatus
from blocks.platform.domain import EventName
from blocks.ports import GitOpsVerifier, GitProvider, SecretBindings, SecretStore
from services.platform.execution_workers.deps import OperationsDep, ProvidersDep
from services.platform.execution_workers.models import (
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
from services.platform.execution_workers.operations import Operation
from services.platform.execution_workers.providers import BINDINGS, GIT, SECRETS
from services.platform.execution_workers.routers.common import SIDE_EFFECT_ERRORS, environment_of

router = APIRouter(prefix="/appenv", tags=["appenv"], responses=SIDE_EFFECT_ERRORS)


@router.post(
    "/branch-protection",
    response_model=BranchProtectionInfo,
    summary="Require at least N approving reviews on a branch (default branch when absent)",
)
def ensure_branch_protection(
    body: BranchProtectionRequest, providers: ProvidersDep, operations: OperationsDep
) -> BranchProtectionInfo:
    environment = environment_of(body.repository, body.environment_id)
    with operations.run(
        "execution_workers.ensure_branch_protection",
        attributes={"repository": body.repository, "environment_id": environment},
        event=EventName.APPENV_BRANCH_PROTECTION,
        environments=[environment] if environment else [],
    ) as op:
        git: GitProvider = providers.require(GIT)
        op.uses(git)
        with op.downstream(git):
            info = git.ensure_branch_protection(
                body.repository,
                branch=body.branch,
                required_approving_review_count=body.required_approving_review_count,
            )
        op.payload.update(
            repository=info.repository,
            branch=info.branch,
            required_approving_review_count=info.required_approving_review_count,
            changed=info.changed,
        )
    return info


@router.post(
    "/secrets",
    response_model=SecretsResult,
    summary="Materialize an environment's secrets (create-only: existing ones are kept)",
)
def provision_secrets(
    body: SecretsRequest, providers: ProvidersDep, operations: OperationsDep
) -> SecretsResult:
    with operations.run(
        "execution_workers.provision_secrets",
        attributes={
            "environment_id": body.environment_id,
            "application_id": body.application_id,
        },
        event=EventName.APPENV_SECRETS,
        environments=[body.environment_id],
    ) as op:
        backend: SecretStore = providers.require(SECRETS)
        op.uses(backend)
        with op.downstream(backend):
            stored = backend.provision_secrets(
                body.environment_id, body.application_id, body.secrets
            )
        op.payload.update(application_id=body.application_id, secrets=len(stored))
    return SecretsResult(environment_id=body.environment_id, secrets=stored)


@router.post(
    "/secrets/delete",
    response_model=SecretsDeleteResult,
    summary="Delete an environment's secrets with every version (the undo of /appenv/secrets)",
)
def delete_secrets(
    body: SecretsDeleteRequest, providers: ProvidersDep, operations: OperationsDep
) -> SecretsDeleteResult:
    with operations.run(
        "execution_workers.delete_secrets",
        attributes={"environment_id": body.environment_id},
        event=EventName.APPENV_SECRETS,
        environments=[body.environment_id],
        operation="delete",
    ) as op:
        backend: SecretStore = providers.require(SECRETS)
        op.uses(backend)
        with op.downstream(backend):
            deleted = backend.delete_secrets_if_present(body.environment_id, body.secrets)
        op.payload.update(secrets=len(deleted))
    return SecretsDeleteResult(environment_id=body.environment_id, deleted=deleted)


@router.post(
    "/secret-bindings",
    response_model=SecretBindingsResult,
    summary="Ensure secret bindings (upsert by secret, environment and target)",
)
def create_secret_bindings(
    body: SecretBindingsRequest, providers: ProvidersDep, operations: OperationsDep
) -> SecretBindingsResult:
    environments = list(dict.fromkeys(b.environment_id for b in body.bindings))
    secrets = sorted({b.secret_id for b in body.bindings})
    with operations.run(
        "execution_workers.create_secret_bindings",
        attributes={
            "environment_id": ",".join(environments),
            "secret_id": ",".join(secrets),
        },
        event=EventName.APPENV_SECRET_BINDINGS,
        environments=environments,
    ) as op:
        backend: SecretBindings = providers.require(BINDINGS)
        op.uses(backend)
        records = [BindingRecord(**b.model_dump()) for b in body.bindings]
        with op.downstream(backend):
            bindings = backend.create_secret_bindings(records)
        _count_per_environment(op, environments, bindings)
    return SecretBindingsResult(bindings=bindings)


@router.post(
    "/secret-bindings/delete",
    response_model=SecretBindingsResult,
    summary="Remove secret bindings (the undo of /appenv/secret-bindings; gone is success)",
)
def delete_secret_bindings(
    body: SecretBindingsDeleteRequest, providers: ProvidersDep, operations: OperationsDep
) -> SecretBindingsResult:
    environments = list(dict.fromkeys(b.environment_id for b in body.bindings))
    secrets = sorted({b.secret_id for b in body.bindings})
    with operations.run(
        "execution_workers.delete_secret_bindings",
        attributes={
            "environment_id": ",".join(environments),
            "secret_id": ",".join(secrets),
        },
        event=EventName.APPENV_SECRET_BINDINGS,
        environments=environments,
        operation="delete",
    ) as op:
        backend: SecretBindings = providers.require(BINDINGS)
        op.uses(backend)
        records = [BindingRecord(**b.model_dump()) for b in body.bindings]
        with op.downstream(backend):
            removed = backend.delete_secret_bindings_if_present(records)
        _count_per_environment(op, environments, removed)
    return SecretBindingsResult(bindings=removed)


@router.post(
    "/gitops-verify",
    response_model=GitOpsStatus,
    summary="Ask whether GitOps has reconciled the environment (a read: no side effect)",
)
def verify_gitops(
    body: GitOpsVerifyRequest, providers: ProvidersDep, operations: OperationsDep
) -> GitOpsStatus:
    with operations.run(
        "execution_workers.verify_gitops",
        attributes={"environment_id": body.environment_id, "repository": body.repository},
        event=EventName.APPENV_GITOPS_VERIFY,
        environments=[body.environment_id],
    ) as op:
        backend: GitOpsVerifier = providers.require(BINDINGS)
        op.uses(backend)
        with op.downstream(backend):
            status = backend.verify_gitops(body.environment_id, body.repository)
        op.payload.update(
            repository=body.repository, reconciled=status.reconciled, revision=status.revision
        )
    return status


def _count_per_environment(
    op: Operation, environments: list[str], bindings: list[BindingRecord]
) -> None:
    """Each environment's event says how many of the bindings (and which secrets) are its."""
    for environment in environments:
        mine = [b for b in bindings if b.environment_id == environment]
        op.payload_for[environment] = {
            "bindings": len(mine),
            "secret_ids": sorted({b.secret_id for b in mine}),
        }
