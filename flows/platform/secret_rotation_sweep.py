"""SecretRotationSweep: rotate every secret whose rotation interval has elapsed.

Trigger: a cron schedule on the ``SecretRotationSweep/idp`` deployment (or a manual run).

Steps: ListSecretsDue (control plane, oldest first, at most ``request.limit`` or
``MAX_DUE``) -> RotateSecretBatch per ``BATCH_SIZE`` secrets (the SecretRotation steps for
each secret, at most ``request.max_concurrency`` in flight so Harbor is not flooded) ->
a table artifact of outcomes -> summary and outcome report. A progress artifact moves
while it runs. One secret's failure never stops the others: each secret's outcome
(rotated, failed with its code, or skipped because another run holds its lock) is in
the result. The run ends Completed whenever every secret was attempted; the outcome
reported to the control plane is ``failure`` if any secret failed.

Why batches and not one task per secret: see ``tasks/platform/sweep.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import Any

from prefect import Flow, flow
from prefect.artifacts import (
    acreate_progress_artifact,
    acreate_table_artifact,
    aupdate_progress_artifact,
)
from prefect.client.schemas.objects import FlowRun
from prefect.states import State

from blocks.platform.control_plane import SecretState
from blocks.platform.domain import WORKFLOW_SECRET_ROTATION_SWEEP
from blocks.platform.workflows import SecretRotationSweepRequest
from flows.platform.bookkeeping import WorkflowRun, artifact_key
from flows.platform.providers import load_control_plane, load_registry, load_secret_backend
from flows.platform.results import SecretRotationSweepResult
from tasks.platform.control_plane import list_secrets_due
from tasks.platform.policy import in_thread
from tasks.platform.sweep import (
    RotationOutcome,
    SweepItem,
    SweepProgress,
    SweepRun,
    rotate_secret_batch,
)

BATCH_SIZE = 100
# The control plane's page limit; the next scheduled sweep picks up whatever is left.
MAX_DUE = 1000


def batches(secrets: Sequence[SecretState], size: int) -> Iterator[tuple[str, list[SecretState]]]:
    count = (len(secrets) + size - 1) // size
    for number, start in enumerate(range(0, len(secrets), size), start=1):
        yield f"{number}/{count}", list(secrets[start : start + size])


async def release_locks_on_abort(flow: Flow[Any, Any], flow_run: FlowRun, state: State) -> None:
    """A cancelled or crashed sweep skips each rotation's own unlock: free every lock the
    run holds (up to ``max_concurrency`` secrets that were in flight), or they would refuse
    rotations until somebody released them by hand. Their status stays as it was."""
    control_plane = await load_control_plane()
    await in_thread(control_plane.release_locks_of, str(flow_run.id))


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
    control_plane, registry, backend = await asyncio.gather(
        load_control_plane(), load_registry(), load_secret_backend()
    )
    run = WorkflowRun.begin(WORKFLOW_SECRET_ROTATION_SWEEP, None, "sweep")
    sweep = SweepRun(flow_run_id=run.flow_run_id, run_key=run.run_key, workflow=run.workflow)

    due = await list_secrets_due(control_plane, min(request.limit or MAX_DUE, MAX_DUE))
    progress_id = await acreate_progress_artifact(
        progress=0.0,
        key=artifact_key(run.workflow, "progress"),
        description=f"Rotating {len(due)} due secret(s)",
    )
    items: list[SweepItem] = []
    for label, batch in batches(due, BATCH_SIZE):
        progress = SweepProgress(artifact_id=progress_id, done_before=len(items), total=len(due))
        items += await rotate_secret_batch(
            control_plane, registry, backend, batch, sweep, request.max_concurrency, label, progress
        )
    await aupdate_progress_artifact(artifact_id=progress_id, progress=100.0)
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
    if result.failed:
        await run.publish_summary("Secret rotation sweep", [("result", "partial"), *summary])
        await run.report(control_plane, succeeded=False)
    else:
        await run.succeed(control_plane, None, "Secret rotation sweep", summary)
    return result
