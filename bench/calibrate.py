"""Record one item of each workflow through the product's own code (the lower bound's script).

The bulk flow's and the sweep's per-item functions are the same code the workflows run;
calling the batch tasks' functions (``task.fn``) here, in the benchmark process, with the
block documents the platform saved, makes exactly the HTTP calls one item makes in a real
run (Prefect's own API calls and event websocket excepted: those are the engine's cost,
which is what the benchmark measures). Imports Prefect: call after ``PREFECT_API_URL``
points at the stack.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from bench.platform import BenchError, Platform
from bench.trace import Recorder, Template
from blocks.platform.domain import WORKFLOW_BULK_APPENV_PROVISIONING, WORKFLOW_SECRET_ROTATION_SWEEP


def _who(workflow: str) -> Any:
    from tasks.platform.sweep import SweepRun

    run_id = str(uuid.uuid4())
    return SweepRun(flow_run_id=run_id, run_key=run_id, workflow=workflow)


def provisioning(platform: Platform, environment_id: str) -> Template:
    """The calls of one environment's provisioning (``environment_id`` is the name to swap)."""
    from flows.platform.providers import load_control_plane, load_git_provider, load_secret_backend
    from tasks.platform.bulk_provisioning import ProvisioningOutcome, provision_environment_batch

    async def record() -> tuple[Any, Recorder]:
        cp = await load_control_plane()
        git = await load_git_provider()
        backend = await load_secret_backend()
        recorder = Recorder(platform.hosts())
        who = _who(WORKFLOW_BULK_APPENV_PROVISIONING)
        with recorder.recording():
            items = await provision_environment_batch.fn(
                cp, git, backend, [environment_id], who, 1, "calibration"
            )
        return items[0], recorder

    item, recorder = asyncio.run(record())
    if item.outcome is not ProvisioningOutcome.PROVISIONED:
        raise BenchError(f"calibration provisioning failed: {item.error_code} {item.error}")
    return Template.build(recorder.calls, {environment_id: environment_id})


def rotation(platform: Platform, secret_id: str, robot: str) -> Template:
    """The calls of one secret's rotation in a sweep (secret and robot are names to swap)."""
    from flows.platform.providers import load_control_plane, load_registry, load_secret_backend
    from tasks.platform.sweep import RotationOutcome, rotate_secret_batch

    async def record() -> tuple[Any, Recorder]:
        cp = await load_control_plane()
        registry = await load_registry()
        backend = await load_secret_backend()
        secret = cp.get_secret(secret_id)
        recorder = Recorder(platform.hosts())
        who = _who(WORKFLOW_SECRET_ROTATION_SWEEP)
        with recorder.recording():
            items = await rotate_secret_batch.fn(
                cp, registry, backend, [secret], who, 1, "calibration", None
            )
        return items[0], recorder

    item, recorder = asyncio.run(record())
    if item.outcome is not RotationOutcome.ROTATED:
        raise BenchError(f"calibration rotation failed: {item.error_code} {item.error}")
    return Template.build(recorder.calls, {secret_id: secret_id, robot: robot})
