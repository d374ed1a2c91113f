"""BulkEnvironmentProvisioning: provision many application environments in one run.

Not a seed workflow: the seed's ApplicationEnvironmentProvisioning runs once per
environment, as its own flow run (a new process on the worker, ~5 s to start). Mass
changes (a new region for every application, re-provisioning after an incident, the
benchmarks) go through this flow instead, started from the Prefect UI, ``prefect
deployment run BulkEnvironmentProvisioning/idp`` or the API.

Steps: ProvisionEnvironmentBatch per ``batch_size`` environments, one batch after the
other; inside, each environment goes through exactly the ApplicationEnvironmentProvisioning
steps (``tasks/platform/bulk_provisioning.py``) with per-step retries in code, at most
``request.max_concurrency`` at once. Each environment is marked ``provisioning`` and then
``provisioned`` or ``provisioning_failed`` and gets its ``workflow_appenv_provisioning_*``
event, as with a single run. A table artifact lists every environment's outcome; the run
ends Completed once every environment was attempted, and reports ``failure`` to the control
plane when any failed.
"""

from __future__ import annotations

import asyncio

from prefect import flow
from prefect.artifacts import (
    acreate_progress_artifact,
    acreate_table_artifact,
    aupdate_progress_artifact,
)

from blocks.platform.domain import WORKFLOW_BULK_APPENV_PROVISIONING
from blocks.platform.workflows import BulkEnvironmentProvisioningRequest
from flows.platform.bookkeeping import WorkflowRun, artifact_key
from flows.platform.providers import load_control_plane, load_git_provider, load_secret_backend
from flows.platform.results import BulkEnvironmentProvisioningResult
from tasks.platform.batch import SweepRun
from tasks.platform.bulk_provisioning import (
    ProvisioningItem,
    ProvisioningOutcome,
    provision_environment_batch,
)

# Environments per batch task: at least this many, and a whole number of concurrency
# "waves", so a batch never ends with a half-used pool.
MIN_BATCH_SIZE = 100


def batch_size(max_concurrency: int) -> int:
    waves = -(-MIN_BATCH_SIZE // max_concurrency)
    return waves * max_concurrency


@flow(name=WORKFLOW_BULK_APPENV_PROVISIONING, persist_result=True)
async def bulk_environment_provisioning(
    request: BulkEnvironmentProvisioningRequest,
) -> BulkEnvironmentProvisioningResult:
    """Provision every listed environment with bounded concurrency; list each outcome."""
    control_plane, git, backend = await asyncio.gather(
        load_control_plane(), load_git_provider(), load_secret_backend()
    )
    run = WorkflowRun.begin(WORKFLOW_BULK_APPENV_PROVISIONING, None, "bulk")
    who = SweepRun(flow_run_id=run.flow_run_id, run_key=run.run_key, workflow=run.workflow)
    environment_ids = list(dict.fromkeys(request.environment_ids))  # duplicates once

    size = batch_size(request.max_concurrency)
    count = -(-len(environment_ids) // size)
    progress_id = await acreate_progress_artifact(
        progress=0.0,
        key=artifact_key(run.workflow, "progress"),
        description=f"Provisioning {len(environment_ids)} environment(s)",
    )
    items: list[ProvisioningItem] = []
    for number, start in enumerate(range(0, len(environment_ids), size), start=1):
        items += await provision_environment_batch(
            control_plane,
            git,
            backend,
            environment_ids[start : start + size],
            who,
            request.max_concurrency,
            f"{number}/{count}",
        )
        await aupdate_progress_artifact(
            artifact_id=progress_id, progress=100.0 * len(items) / len(environment_ids)
        )
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
    if failed:
        title = "Bulk environment provisioning"
        await run.publish_summary(title, [("result", "partial"), *summary])
        await run.report(control_plane, succeeded=False)
    else:
        await run.succeed(control_plane, None, "Bulk environment provisioning", summary)
    return result
