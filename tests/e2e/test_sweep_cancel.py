"""A sweep cancelled while its rotations are in flight leaves no secret locked: the worker
ends the run's process and runs the flow's cancellation hook, which releases every lock
the run held (``POST /internal/v1/locks/release``).

Runs after ``test_schedule.py`` (file order): the sweep rotates whatever is due in the
shared control plane, so it must not race that test's own sweep.
"""

from __future__ import annotations

import pytest
from prefect.client.schemas.objects import StateType
from prefect.states import Cancelling

from blocks.platform.domain import WORKFLOW_SECRET_ROTATION_SWEEP
from tests.e2e.support import SLOW_MACHINE_TIMEOUT, Environment, Platform, unique, wait_until

pytestmark = [pytest.mark.e2e, SLOW_MACHINE_TIMEOUT]


def test_a_cancelled_sweep_leaves_no_secret_locked(
    platform: Platform, environment: Environment
) -> None:
    env_id = environment.environment_id
    robots = [unique("held") for _ in range(2)]
    for robot in robots:
        platform.create_robot(robot)
    secret_ids = [platform.register_secret(robot, [env_id]) for robot in robots]

    def holders() -> list[str | None]:
        return [platform.get(f"/api/v1/secrets/{s}")["lock_holder"] for s in secret_ids]

    # Harbor holds every robot-secret refresh for a minute: the rotations stop there, with
    # their locks held, until the run is cancelled.
    platform.add_fault("harbor", method="PATCH", path="/robots/", latency_ms=60_000)
    try:
        run = platform.start_run(WORKFLOW_SECRET_ROTATION_SWEEP, {"max_concurrency": 50})
        wait_until(
            lambda: holders() == [str(run.id)] * len(secret_ids),
            timeout=120,
            every=0.25,
            what="the sweep to hold the secrets' locks",
        )
        platform.prefect.set_flow_run_state(run.id, Cancelling())  # the UI's "Cancel"
        ended = platform.wait_for_run(run.id, timeout=120)
    finally:
        platform.clear_faults("harbor")

    assert ended.state_type is StateType.CANCELLED, platform.worker_log()
    wait_until(
        lambda: holders() == [None, None],
        timeout=60,
        what="the cancellation hook to release the locks",
    )
    statuses = {platform.get(f"/api/v1/secrets/{s}")["status"] for s in secret_ids}
    assert statuses <= {"active", "rotating"}  # as they were when the run stopped
