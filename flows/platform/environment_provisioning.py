"""ApplicationEnvironmentProvisioning (seed 001): repository, protection, secrets, bindings.

Trigger: ``POST /api/v1/applications/{id}/environments`` on control-plane-api starts a
run of ``ApplicationEnvironmentProvisioning/idp`` with ``{"request": {"environment_id"}}``.

Steps, named as in the seed (``provision_environment``, also run per environment by
BulkEnvironmentProvisioning): ValidateApplicationEnvironmentProvisioning ->
MarkEnvironment provisioning -> MaterializeRepositories (``appenv-<environment id>``) ->
ApplyBranchProtection (>= 1 approving review) -> ProvisionSecrets -> CreateSecretBindings
-> VerifyGitOpsReconciliation -> FinalizeApplicationEnvironmentProvisioning ->
``workflow_appenv_provisioning_completed``.

On failure the run compensates: what it created (the repository, the secrets, the
bindings) is removed, newest first, each undo a task run (DeleteSecretBindings,
DeleteSecrets, DeleteRepository) recorded in the control plane; ``keep_partial: true``
leaves it all in place. The environment is then marked ``provisioning_failed``, the
``_failed`` event recorded (with what was undone), and the run ends Failed with the
error's code in its message. Retrying the run replays the provider steps that succeeded
as ``Cached`` when nothing was undone, and does them again when a compensation removed
them; a crashed run that the recovery automation reschedules carries on the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prefect import Flow, flow
from prefect.client.schemas.objects import FlowRun
from prefect.states import State

from blocks.models import (
    BindingRecord,
    BranchProtectionInfo,
    GitOpsStatus,
    RepositoryInfo,
    StoredSecret,
)
from blocks.platform.control_plane import EnvironmentState
from blocks.platform.domain import (
    WORKFLOW_APPENV_PROVISIONING,
    Aggregate,
    EnvironmentStatus,
    EventName,
)
from blocks.platform.workflows import ApplicationEnvironmentProvisioningRequest
from core.steps import Runner, StepRun
from flows.platform.results import ApplicationEnvironmentProvisioningResult
from flows.platform.roles import Roles, load_roles
from flows.platform.run import PlatformRun, best_effort, error_text
from tasks.platform.calls import in_thread
from tasks.platform.compensation import ControlPlaneCompensationLog
from tasks.platform.control_plane import (
    FINALIZE_ENVIRONMENT_PROVISIONING,
    MARK_ENVIRONMENT,
    VALIDATE_ENVIRONMENT_PROVISIONING,
)
from tasks.platform.repositories import APPLY_BRANCH_PROTECTION, MATERIALIZE_REPOSITORIES
from tasks.platform.secrets import (
    CREATE_SECRET_BINDINGS,
    PROVISION_SECRETS,
    VERIFY_GITOPS_RECONCILIATION,
)

REQUIRED_APPROVING_REVIEWS = 1
ROLES = ("git", "secrets", "bindings", "gitops")
STEPS = (
    VALIDATE_ENVIRONMENT_PROVISIONING,
    MARK_ENVIRONMENT,
    MATERIALIZE_REPOSITORIES,
    APPLY_BRANCH_PROTECTION,
    PROVISION_SECRETS,
    CREATE_SECRET_BINDINGS,
    VERIFY_GITOPS_RECONCILIATION,
    FINALIZE_ENVIRONMENT_PROVISIONING,
)


@dataclass
class Provisioning:
    """What one environment's steps produced, as far as they got."""

    environment_id: str
    marked: bool = False
    environment: EnvironmentState | None = None
    repository: RepositoryInfo | None = None
    protection: BranchProtectionInfo | None = None
    secrets: list[StoredSecret] | None = None
    bindings: list[BindingRecord] | None = None
    gitops: GitOpsStatus | None = None


async def provision_environment(
    run: Runner, roles: Roles, done: Provisioning, flow_run_id: str
) -> Provisioning:
    """The seed's steps for one environment, in order (``done`` fills in as they run)."""
    cp, git, env_id = roles.control_plane, roles.git, done.environment_id
    env = await run(VALIDATE_ENVIRONMENT_PROVISIONING, cp, env_id)
    done.environment = env
    await run(MARK_ENVIRONMENT, cp, env_id, EnvironmentStatus.PROVISIONING, flow_run_id)
    done.marked = True
    repo = await run(MATERIALIZE_REPOSITORIES, git, env.repository, f"Environment {env_id}")
    done.repository = repo
    done.protection = await run(
        APPLY_BRANCH_PROTECTION, git, repo.name, REQUIRED_APPROVING_REVIEWS, repo.default_branch
    )
    names = env.secrets
    done.secrets = await run(PROVISION_SECRETS, roles.secrets, env_id, env.application_id, names)
    done.bindings = await run(CREATE_SECRET_BINDINGS, roles.bindings, env_id, names)
    done.gitops = await run(VERIFY_GITOPS_RECONCILIATION, roles.gitops, env_id, repo.name)
    await run(FINALIZE_ENVIRONMENT_PROVISIONING, cp, env_id, flow_run_id)
    return done


async def compensate_on_abort(flow: Flow[Any, Any], flow_run: FlowRun, state: State) -> None:
    """A cancelled run, or a crashed one whose process can still run hooks, skips the
    failure path: undo what it created (unless it asked to keep it) and mark the
    environment failed. A run killed outright runs no hook; the recovery automation
    reschedules it and the retry carries on (its later failure compensates every attempt).
    """
    request = ApplicationEnvironmentProvisioningRequest.model_validate(
        flow_run.parameters["request"]
    )
    roles = await load_roles(*ROLES)
    if not request.keep_partial:
        steps = StepRun(
            run_id=str(flow_run.id),
            attempt=max(int(flow_run.run_count or 1), 1),
            steps=STEPS,
            resources=roles.resources(),
            log=ControlPlaneCompensationLog(roles.control_plane),
        )
        await best_effort(steps.compensate(), f"compensating {flow_run.name}")
    await best_effort(
        in_thread(
            roles.control_plane.transition_environment,
            request.environment_id,
            EnvironmentStatus.PROVISIONING_FAILED,
            flow_run_id=str(flow_run.id),
            reason=f"the run was {(state.name or state.type.value).lower()}",
        ),
        f"marking {request.environment_id} failed",
    )


@flow(
    name=WORKFLOW_APPENV_PROVISIONING,
    flow_run_name="provision-{request.environment_id}",
    persist_result=True,
    on_cancellation=[compensate_on_abort],
    on_crashed=[compensate_on_abort],
)
async def application_environment_provisioning(
    request: ApplicationEnvironmentProvisioningRequest,
) -> ApplicationEnvironmentProvisioningResult:
    """Provision an application environment, step by step as in seed 001."""
    env_id = request.environment_id
    async with PlatformRun.open(
        WORKFLOW_APPENV_PROVISIONING,
        Aggregate.ENVIRONMENT,
        env_id,
        roles=ROLES,
        steps=STEPS,
        compensable=True,
    ) as run:
        done = Provisioning(env_id)
        try:
            await provision_environment(run, run.roles, done, run.flow_run_id)
        except Exception as exc:
            undone = [] if request.keep_partial else await run.compensate()
            if done.marked:
                failed = EnvironmentStatus.PROVISIONING_FAILED
                await best_effort(
                    run(
                        MARK_ENVIRONMENT,
                        run.roles.control_plane,
                        env_id,
                        failed,
                        run.flow_run_id,
                        error_text(exc),
                    ),
                    f"marking environment {env_id} {failed}",
                )
            removed = [f"{u.undo}({u.step})" for u in undone if u.ok]
            payload = {"undone": removed, "kept_partial": request.keep_partial}
            event = run.failure_event(EventName.APPENV_PROVISIONING_FAILED, exc, payload)
            rows = [
                ("undone", ", ".join(removed) or "nothing"),
                ("kept partial work", request.keep_partial),
            ]
            await run.fail(event, exc, f"Provisioning of {env_id} failed", rows)
            raise

        assert done.environment and done.repository and done.protection and done.gitops
        repository, protection = done.repository, done.protection
        stored, bindings = done.secrets or [], done.bindings or []
        event = run.event(
            EventName.APPENV_PROVISIONING_COMPLETED,
            payload={
                "application_id": done.environment.application_id,
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
            ("gitops", f"reconciled at {done.gitops.revision or 'unknown revision'}"),
        ]
        await run.succeed(event, f"Provisioned {env_id}", summary)
        return ApplicationEnvironmentProvisioningResult(
            flow_run_id=run.flow_run_id,
            environment_id=env_id,
            application_id=done.environment.application_id,
            status=EnvironmentStatus.PROVISIONED,
            repository=repository,
            protection=protection,
            secrets=stored,
            bindings=bindings,
            gitops=done.gitops,
        )
