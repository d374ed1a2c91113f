"""SecretRotationSweep: rotate every secret whose rotation interval has elapsed.

Trigger: a cron schedule on the ``SecretRotationSweep/idp`` deployment (or a manual run).

Steps: ListSecretsDue (control plane, oldest first, at most ``request.limit`` or
``MAX_DUE``) -> RotateDueSecret per secret, through the batch driver
(``core.steps.Batch``: one task run per secret, at most ``request.max_concurrency`` in
flight so Harbor is not flooded), each running exactly SecretRotation's steps
(``flows.platform.secret_rotation.rotate``) -> a table artifact of outcomes -> summary and
outcome report. A progress artifact moves while it runs. One secret's failure never stops
the others: each secret's outcome (rotated, failed with its code, or skipped because
another run holds its lock) is in the result. The run ends Completed whenever every secret
was attempted; the outcome reported to the control plane is ``failure`` if any failed.
"""

from __future__ import annotations

from typing import Any

from prefect import Flow, flow
from prefect.artifacts import acreate_table_artifact
from prefect.client.schemas.objects import FlowRun
from prefect.states import State

from blocks.platform.control_plane import SecretState
from blocks.platform.domain import (
    WORKFLOW_SECRET_ROTATION_SWEEP,
    Aggregate,
    EventName,
    EventResult,
    SecretStatus,
)
from blocks.platform.workflows import SecretRotationSweepRequest
from core.errors import SecretLocked
from core.steps import Batch, ItemRun, will_retry
from flows.platform.results import RotationOutcome, SecretRotationSweepResult, SweepItem
from flows.platform.roles import load_role
from flows.platform.run import (
    PlatformRun,
    artifact_key,
    best_effort,
    error_code,
    error_text,
    event_spec,
    failure_payload,
)
from flows.platform.secret_rotation import ROLES, STEPS, Rotation, rotate, settle
from tasks.platform.calls import in_thread, widen_thread_pool
from tasks.platform.control_plane import LIST_SECRETS_DUE, RECORD_DOMAIN_EVENT
from tasks.platform.policies import ITEM
from tasks.platform.rotation import check_rotatable

# The control plane's page limit; the next scheduled sweep picks up whatever is left.
MAX_DUE = 1000


async def release_locks_on_abort(flow: Flow[Any, Any], flow_run: FlowRun, state: State) -> None:
    """A cancelled or crashed sweep skips each rotation's own unlock: free every lock the
    run holds (up to ``max_concurrency`` secrets that were in flight), or they would refuse
    rotations until somebody released them by hand. Their status stays as it was."""
    control_plane = await load_role("control_plane")
    await in_thread(control_plane.release_locks_of, str(flow_run.id))


def rotate_due_secret(run: PlatformRun) -> Any:
    """A batch item: SecretRotation's steps for one due secret, its events, its outcome."""
    roles, holder = run.roles, run.flow_run_id

    def event(name: EventName, secret_id: str, result: EventResult, payload: dict[str, Any]) -> Any:
        return event_spec(
            run.run_key,
            run.workflow,
            name,
            Aggregate.SECRET,
            secret_id,
            flow_run_id=holder,
            result=result,
            payload=payload,
        )

    async def item(steps: ItemRun, secret: SecretState) -> SweepItem:
        done = Rotation(secret)
        try:
            check_rotatable(secret)
            started = event(EventName.SECRET_ROTATION_STARTED, secret.id, EventResult.SUCCESS, {})
            await rotate(steps, roles, done, holder, started)
        except SecretLocked as exc:
            # Another run is rotating it: not this sweep's failure, and not its lock.
            return SweepItem(
                secret_id=secret.id,
                outcome=RotationOutcome.SKIPPED,
                status=secret.status,
                error_code=exc.code,
                error=error_text(exc),
            )
        except Exception as exc:
            if will_retry(exc):  # Prefect runs the item again: leave the bookkeeping to it
                raise
            status = await settle(steps, roles, done, holder, exc)
            payload: dict[str, Any] = {"secret_status": status.value if status else None}
            failed = event(
                EventName.SECRET_ROTATION_FAILED,
                secret.id,
                EventResult.ERROR,
                failure_payload(exc, payload),
            )
            await best_effort(
                steps(RECORD_DOMAIN_EVENT, roles.control_plane, failed),
                f"recording the failure of {secret.id}",
            )
            return SweepItem(
                secret_id=secret.id,
                outcome=RotationOutcome.FAILED,
                status=status or secret.status,
                stored_version=done.stored.version if done.stored else None,
                error_code=error_code(exc),
                error=error_text(exc),
            )
        assert done.robot and done.stored
        facts = {
            "robot": done.robot.name,
            "stored_version": done.stored.version,
            "bindings": len(done.bindings or []),
        }
        completed = event(
            EventName.SECRET_ROTATION_COMPLETED, secret.id, EventResult.SUCCESS, facts
        )
        await steps(RECORD_DOMAIN_EVENT, roles.control_plane, completed)
        return SweepItem(
            secret_id=secret.id,
            outcome=RotationOutcome.ROTATED,
            status=SecretStatus.ACTIVE,
            stored_version=done.stored.version,
            bindings=len(done.bindings or []),
        )

    return item


@flow(
    name=WORKFLOW_SECRET_ROTATION_SWEEP,
    persist_result=True,
    on_cancellation=[release_locks_on_abort],
    on_crashed=[release_locks_on_abort],
)
async def secret_rotation_sweep(
    request: SecretRotationSweepRequest = SecretRotationSweepRequest(),
) -> SecretRotationSweepResult:
    """Rotate all due secrets with bounded concurrency; list every secret's outcome."""
    widen_thread_pool(request.max_concurrency)
    async with PlatformRun.open(
        WORKFLOW_SECRET_ROTATION_SWEEP, None, "sweep", roles=ROLES, steps=STEPS
    ) as run:
        due = await run(
            LIST_SECRETS_DUE, run.roles.control_plane, min(request.limit or MAX_DUE, MAX_DUE)
        )
        batch = Batch(
            "RotateDueSecret",
            rotate_due_secret(run),
            policy=ITEM,
            max_concurrency=request.max_concurrency,
            item_id=lambda secret: secret.id,
        )
        outcomes = await batch.run(
            due,
            progress_key=artifact_key(run.workflow, "progress"),
            description=f"Rotating {len(due)} due secret(s)",
        )
        items = [
            o.result.model_copy(update={"retries": o.retries})
            if o.result is not None
            else SweepItem(
                secret_id=o.item_id,
                outcome=RotationOutcome.FAILED,
                error_code=o.error_code,
                error=o.error,
                retries=o.retries,
            )
            for o in outcomes
        ]
        await acreate_table_artifact(
            key=artifact_key(run.workflow, "outcomes"),
            table=[item.model_dump(mode="json") for item in items],
            description="Outcome of every due secret (never a value)",
        )

        counts = {o: sum(1 for i in items if i.outcome is o) for o in RotationOutcome}
        result = SecretRotationSweepResult(
            flow_run_id=run.flow_run_id,
            due=len(due),
            rotated=counts[RotationOutcome.ROTATED],
            failed=counts[RotationOutcome.FAILED],
            skipped=counts[RotationOutcome.SKIPPED],
            items=items,
        )
        summary = [
            ("due", result.due),
            ("rotated", result.rotated),
            ("failed", result.failed),
            ("skipped (locked)", result.skipped),
            ("max concurrency", request.max_concurrency),
        ]
        retries = run.steps.stats.retries + batch.stats.retries
        if result.failed:
            await run.publish_summary("Secret rotation sweep", [("result", "partial"), *summary])
            await run.report(succeeded=False, retries=retries)
        else:
            await run.succeed(None, "Secret rotation sweep", summary, retries=retries)
        return result
