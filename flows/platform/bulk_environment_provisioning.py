"""BulkEnvironmentProvisioning: provision many application environments in one run.

Not a seed workflow: the seed's ApplicationEnvironmentProvisioning runs once per
environment, as its own flow run (a new process on the worker, seconds to start). Mass
changes (a new region for every application, re-provisioning after an incident, the
benchmarks) go through this flow instead, started from the Prefect UI, ``prefect
deployment run BulkEnvironmentProvisioning/idp`` or the API.

Steps: ProvisionEnvironment per environment, through the batch driver
(``core.steps.Batch``: one task run per environment, at most ``request.max_concurrency``
at once), each running exactly ApplicationEnvironmentProvisioning's steps
(``flows.platform.environment_provisioning.provision_environment``). Each environment is
marked ``provisioning`` and then ``provisioned`` or ``provisioning_failed`` and gets its
``workflow_appenv_provisioning_*`` event, as with a single run. A table artifact lists
every environment's outcome; the run ends Completed once every environment was attempted,
and reports ``failure`` to the control plane when any failed. A retried run provisions
only the environments that failed: the others replay as ``Cached``.
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.artifacts import acreate_table_artifact

from blocks.platform.domain import (
    WORKFLOW_BULK_APPENV_PROVISIONING,
    Aggregate,
    EnvironmentStatus,
    EventName,
    EventResult,
)
from blocks.platform.workflows import BulkEnvironmentProvisioningRequest
from core.steps import Batch, ItemRun, will_retry
from flows.platform.environment_provisioning import (
    ROLES,
    STEPS,
    Provisioning,
    provision_environment,
)
from flows.platform.results import (
    BulkEnvironmentProvisioningResult,
    ProvisioningItem,
    ProvisioningOutcome,
)
from flows.platform.run import (
    PlatformRun,
    artifact_key,
    best_effort,
    error_code,
    error_text,
    event_spec,
    failure_payload,
)
from tasks.platform.calls import widen_thread_pool
from tasks.platform.control_plane import MARK_ENVIRONMENT, RECORD_DOMAIN_EVENT
from tasks.platform.policies import ITEM


def provision_one(run: PlatformRun) -> Any:
    """A batch item: the provisioning steps for one environment, its events, its outcome."""
    roles, holder = run.roles, run.flow_run_id

    def event(name: EventName, env_id: str, result: EventResult, payload: dict[str, Any]) -> Any:
        return event_spec(
            run.run_key,
            run.workflow,
            name,
            Aggregate.ENVIRONMENT,
            env_id,
            flow_run_id=holder,
            result=result,
            payload=payload,
        )

    async def item(steps: ItemRun, env_id: str) -> ProvisioningItem:
        done = Provisioning(env_id)
        try:
            await provision_environment(steps, roles, done, holder)
        except Exception as exc:
            if will_retry(exc):  # Prefect runs the item again: leave the bookkeeping to it
                raise
            status = None
            if done.marked:
                failed = EnvironmentStatus.PROVISIONING_FAILED
                marked = await best_effort(
                    steps(
                        MARK_ENVIRONMENT,
                        roles.control_plane,
                        env_id,
                        failed,
                        holder,
                        error_text(exc),
                    ),
                    f"marking {env_id} {failed}",
                )
                status = failed if marked is not None else None
            failure = event(
                EventName.APPENV_PROVISIONING_FAILED,
                env_id,
                EventResult.ERROR,
                failure_payload(exc),
            )
            await best_effort(
                steps(RECORD_DOMAIN_EVENT, roles.control_plane, failure),
                f"recording the failure of {env_id}",
            )
            return ProvisioningItem(
                environment_id=env_id,
                outcome=ProvisioningOutcome.FAILED,
                status=status,
                error_code=error_code(exc),
                error=error_text(exc),
            )
        assert done.environment and done.repository
        stored, bindings = done.secrets or [], done.bindings or []
        facts = {
            "application_id": done.environment.application_id,
            "repository": done.repository.full_name,
            "secrets": len(stored),
            "bindings": len(bindings),
        }
        completed = event(
            EventName.APPENV_PROVISIONING_COMPLETED, env_id, EventResult.SUCCESS, facts
        )
        await steps(RECORD_DOMAIN_EVENT, roles.control_plane, completed)
        return ProvisioningItem(
            environment_id=env_id,
            outcome=ProvisioningOutcome.PROVISIONED,
            status=EnvironmentStatus.PROVISIONED,
            repository=done.repository.full_name,
            secrets=len(stored),
            bindings=len(bindings),
        )

    return item


@flow(name=WORKFLOW_BULK_APPENV_PROVISIONING, persist_result=True)
async def bulk_environment_provisioning(
    request: BulkEnvironmentProvisioningRequest,
) -> BulkEnvironmentProvisioningResult:
    """Provision every listed environment with bounded concurrency; list each outcome."""
    widen_thread_pool(request.max_concurrency)
    environment_ids = list(dict.fromkeys(request.environment_ids))  # duplicates once
    async with PlatformRun.open(
        WORKFLOW_BULK_APPENV_PROVISIONING, None, "bulk", roles=ROLES, steps=STEPS
    ) as run:
        batch = Batch(
            "ProvisionEnvironment",
            provision_one(run),
            policy=ITEM,
            max_concurrency=request.max_concurrency,
        )
        outcomes = await batch.run(
            environment_ids,
            progress_key=artifact_key(run.workflow, "progress"),
            description=f"Provisioning {len(environment_ids)} environment(s)",
        )
        items = [
            o.result.model_copy(update={"retries": o.retries, "duration_seconds": o.seconds})
            if o.result is not None
            else ProvisioningItem(
                environment_id=o.item_id,
                outcome=ProvisioningOutcome.FAILED,
                error_code=o.error_code,
                error=o.error,
                retries=o.retries,
                duration_seconds=o.seconds,
            )
            for o in outcomes
        ]
        await acreate_table_artifact(
            key=artifact_key(run.workflow, "outcomes"),
            table=[item.model_dump(mode="json") for item in items],
            description="Outcome of every environment (never a secret value)",
        )

        failed = sum(1 for item in items if item.outcome is ProvisioningOutcome.FAILED)
        result = BulkEnvironmentProvisioningResult(
            flow_run_id=run.flow_run_id,
            requested=len(environment_ids),
            provisioned=len(items) - failed,
            failed=failed,
            items=items,
        )
        summary = [
            ("requested", result.requested),
            ("provisioned", result.provisioned),
            ("failed", result.failed),
            ("max concurrency", request.max_concurrency),
        ]
        retries = run.steps.stats.retries + batch.stats.retries
        if failed:
            title = "Bulk environment provisioning"
            await run.publish_summary(title, [("result", "partial"), *summary])
            await run.report(succeeded=False, retries=retries)
        else:
            await run.succeed(None, "Bulk environment provisioning", summary, retries=retries)
        return result
