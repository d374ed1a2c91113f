"""ApplicationEnvironmentProvisioning (seed 001): repository, protection, secrets, bindings.

Trigger: ``POST /api/v1/applications/{id}/environments`` on control-plane-api starts a
run of ``ApplicationEnvironmentProvisioning/idp`` with ``{"request": {"environment_id"}}``.

Steps, named as in the seed: validate -> mark provisioning -> MaterializeRepositories
(``appenv-<environment id>``) -> ApplyBranchProtection (>= 1 approving review) ->
ProvisionSecrets -> CreateSecretBindings -> VerifyGitOpsReconciliation ->
FinalizeApplicationEnvironmentProvisioning -> ``workflow_appenv_provisioning_completed``.
Provider steps are cached per flow run, so retrying a failed run skips the ones that
succeeded; on failure the environment is marked ``provisioning_failed``, the ``_failed``
event recorded, and the run ends Failed with the error's code in its message.
"""

from __future__ import annotations

import asyncio

from prefect import flow

from blocks.platform.domain import (
    WORKFLOW_APPENV_PROVISIONING,
    Aggregate,
    EnvironmentStatus,
    EventName,
)
from blocks.platform.workflows import ApplicationEnvironmentProvisioningRequest
from flows.platform.bookkeeping import WorkflowRun, best_effort
from flows.platform.providers import load_control_plane, load_git_provider, load_secret_backend
from flows.platform.results import ApplicationEnvironmentProvisioningResult
from tasks.platform.control_plane import (
    finalize_environment_provisioning,
    mark_environment,
    validate_environment_provisioning,
)
from tasks.platform.git import ensure_branch_protection, ensure_repository
from tasks.platform.secrets import (
    ensure_secret_bindings,
    provision_secrets,
    verify_gitops_reconciliation,
)

REQUIRED_APPROVING_REVIEWS = 1


@flow(
    name=WORKFLOW_APPENV_PROVISIONING,
    flow_run_name="provision-{request.environment_id}",
    persist_result=True,
)
async def application_environment_provisioning(
    request: ApplicationEnvironmentProvisioningRequest,
) -> ApplicationEnvironmentProvisioningResult:
    """Provision an application environment, step by step as in seed 001."""
    control_plane, git, backend = await asyncio.gather(
        load_control_plane(), load_git_provider(), load_secret_backend()
    )
    env_id = request.environment_id
    run = WorkflowRun.begin(WORKFLOW_APPENV_PROVISIONING, Aggregate.ENVIRONMENT, env_id)
    marked = False
    try:
        env = await validate_environment_provisioning(control_plane, env_id)
        await mark_environment(
            control_plane, env_id, EnvironmentStatus.PROVISIONING, run.flow_run_id
        )
        marked = True
        repository = await ensure_repository(git, env.repository, f"Environment {env_id}")
        protection = await ensure_branch_protection(
            git, repository.name, REQUIRED_APPROVING_REVIEWS, repository.default_branch
        )
        stored = await provision_secrets(backend, env_id, env.application_id, env.secrets)
        bindings = await ensure_secret_bindings(backend, env_id, env.secrets)
        gitops = await verify_gitops_reconciliation(backend, env_id, repository.name)
        await finalize_environment_provisioning(control_plane, env_id, run.flow_run_id)
    except Exception as exc:
        if marked:
            failed = EnvironmentStatus.PROVISIONING_FAILED
            await best_effort(
                mark_environment(control_plane, env_id, failed, run.flow_run_id, run.reason(exc)),
                f"marking environment {env_id} {failed}",
            )
        event = run.failure_event(EventName.APPENV_PROVISIONING_FAILED, exc)
        await run.fail(control_plane, event, exc, f"Provisioning of {env_id} failed")
        raise

    result = ApplicationEnvironmentProvisioningResult(
        flow_run_id=run.flow_run_id,
        environment_id=env_id,
        application_id=env.application_id,
        status=EnvironmentStatus.PROVISIONED,
        repository=repository,
        protection=protection,
        secrets=stored,
        bindings=bindings,
        gitops=gitops,
    )
    event = run.event(
        EventName.APPENV_PROVISIONING_COMPLETED,
        payload={
            "application_id": env.application_id,
            "repository": repository.full_name,
            "secrets": len(stored),
            "bindings": len(bindings),
        },
    )
    summary = [
        ("environment", env_id),
        ("repository", repository.html_url),
        (
            "branch protection",
            f"{protection.branch}: {protection.required_approving_review_count} approving "
            f"review(s){'' if protection.changed else ' (already set)'}",
        ),
        ("secrets", ", ".join(f"{s.path} v{s.version}" for s in stored) or "none"),
        ("bindings", ", ".join(f"{b.secret_id} -> {b.target}" for b in bindings) or "none"),
        ("gitops", f"reconciled at {gitops.revision or 'unknown revision'}"),
    ]
    await run.succeed(control_plane, event, f"Provisioned {env_id}", summary)
    return result
