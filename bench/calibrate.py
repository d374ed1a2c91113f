"""Record one item of each workflow through the product's own code (the lower bound's script).

The bulk flow's and the sweep's batch items run the same step lists as the single
workflows; calling an item's body here (``ItemRun`` runs its steps inline), in the
benchmark process, with the block documents the platform saved, makes exactly the HTTP
calls one item makes in a real run (Prefect's own API calls and event websocket excepted:
those are the engine's cost, which is what the benchmark measures). Imports Prefect: call
after ``PREFECT_API_URL`` points at the stack.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from bench.platform import BenchError, Platform
from bench.trace import Recorder, Template
from blocks.platform.domain import WORKFLOW_BULK_APPENV_PROVISIONING, WORKFLOW_SECRET_ROTATION_SWEEP


def _run(workflow: str, roles: tuple[str, ...]) -> Any:
    """A platform run outside Prefect, for calling a batch item's body directly."""
    from core.steps import StepRun
    from flows.platform.roles import load_roles
    from flows.platform.run import PlatformRun

    async def build() -> Any:
        loaded = await load_roles(*roles)
        steps = StepRun(run_id=str(uuid.uuid4()), attempt=1)
        return PlatformRun(workflow, None, "calibration", loaded, steps)

    return build()


def provisioning(platform: Platform, environment_id: str) -> Template:
    """The calls of one environment's provisioning (``environment_id`` is the name to swap)."""
    from core.steps import ItemRun
    from flows.platform.bulk_environment_provisioning import provision_one
    from flows.platform.environment_provisioning import ROLES
    from flows.platform.results import ProvisioningOutcome

    async def record() -> tuple[Any, Recorder]:
        run = await _run(WORKFLOW_BULK_APPENV_PROVISIONING, ROLES)
        recorder = Recorder(platform.hosts())
        with recorder.recording():
            item = await provision_one(run)(ItemRun(environment_id), environment_id)
        return item, recorder

    item, recorder = asyncio.run(record())
    if item.outcome is not ProvisioningOutcome.PROVISIONED:
        raise BenchError(f"calibration provisioning failed: {item.error_code} {item.error}")
    return Template.build(recorder.calls, {environment_id: environment_id})


def rotation(platform: Platform, secret_id: str, robot: str) -> Template:
    """The calls of one secret's rotation in a sweep (secret and robot are names to swap)."""
    from core.steps import ItemRun
    from flows.platform.results import RotationOutcome
    from flows.platform.secret_rotation import ROLES
    from flows.platform.secret_rotation_sweep import rotate_due_secret

    async def record() -> tuple[Any, Recorder]:
        run = await _run(WORKFLOW_SECRET_ROTATION_SWEEP, ROLES)
        secret = run.roles.control_plane.get_secret(secret_id)
        recorder = Recorder(platform.hosts())
        with recorder.recording():
            item = await rotate_due_secret(run)(ItemRun(secret_id), secret)
        return item, recorder

    item, recorder = asyncio.run(record())
    if item.outcome is not RotationOutcome.ROTATED:
        raise BenchError(f"calibration rotation failed: {item.error_code} {item.error}")
    return Template.build(recorder.calls, {secret_id: secret_id, robot: robot})
