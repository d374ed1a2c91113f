"""The rotation sweep's schedule really fires: ``prefect_test_harness`` has no scheduler,
so this uses the real server's. A ``* * * * *`` schedule is added to the sweep
deployment through the Prefect API (as ``prefect deployment schedule create`` does);
the server creates the run, the worker runs it at the minute, and a due secret is
rotated. The schedule is removed afterwards, which also deletes its future runs.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from prefect.client.schemas.actions import DeploymentScheduleCreate, DeploymentUpdate
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.client.schemas.schedules import CronSchedule
from prefect.client.schemas.sorting import FlowRunSort

from blocks.platform.domain import WORKFLOW_SECRET_ROTATION_SWEEP
from tests.e2e.support import SLOW_MACHINE_TIMEOUT, Environment, Platform, now, unique, wait_until

pytestmark = [pytest.mark.e2e, SLOW_MACHINE_TIMEOUT]

# From the schedule's creation to the sweep's completion: up to a minute until the next
# minute starts, plus a run. The brief bounds it at ~130 s.
BUDGET_SECONDS = 130


def test_a_cron_schedule_starts_a_sweep_that_rotates_due_secrets(
    platform: Platform, environment: Environment
) -> None:
    env_id = environment.environment_id
    robot = unique("bot")
    old_value = platform.create_robot(robot)
    secret_id = platform.register_secret(robot, [env_id])  # never rotated: due now
    deployment = platform.deployment(WORKFLOW_SECRET_ROTATION_SWEEP)
    by_deployment = DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id]))
    earlier = {run.id for run in platform.prefect.read_flow_runs(deployment_filter=by_deployment)}

    started = time.monotonic()
    every_minute = DeploymentScheduleCreate(
        schedule=CronSchedule(cron="* * * * *", timezone="UTC"), active=True
    )
    [schedule] = platform.prefect.create_deployment_schedules(deployment.id, [every_minute])
    try:
        # Touching the deployment wakes the server's "recent deployments" scheduler (5 s
        # loop) instead of waiting for the main one (60 s).
        platform.prefect.update_deployment(
            deployment.id, DeploymentUpdate(description=deployment.description)
        )

        def first_scheduled_run() -> FlowRun | None:
            runs = platform.prefect.read_flow_runs(
                deployment_filter=by_deployment, sort=FlowRunSort.EXPECTED_START_TIME_ASC
            )
            new = [r for r in runs if r.id not in earlier and r.auto_scheduled]
            return new[0] if new else None

        scheduled = wait_until(first_scheduled_run, timeout=30, what="the scheduler's sweep run")
        remaining = BUDGET_SECONDS - (time.monotonic() - started)
        run = platform.wait_for_run(scheduled.id, timeout=remaining)
    finally:
        platform.prefect.delete_deployment_schedule(deployment.id, schedule.id)

    platform.assert_completed(run)
    assert run.auto_scheduled
    assert run.created_by is not None and run.created_by.type == "SCHEDULE"
    assert run.expected_start_time is not None and run.expected_start_time.second == 0
    secret = platform.get(f"/api/v1/secrets/{secret_id}")
    assert secret["last_flow_run_id"] == str(run.id)
    assert (secret["status"], secret["lock_holder"]) == ("active", None)
    assert secret["stored"] == {
        "backend": "vault",
        "path": f"secret/idp/secrets/{secret_id}",
        "version": 1,
    }
    assert platform.robot_refreshes(robot) == 1
    assert not platform.harbor_accepts(robot, old_value)
    bound = [b for b in platform.bindings(env_id) if b["secret_id"] == secret_id]
    assert [(b["target"], b["version"]) for b in bound] == [(f"k8s:{env_id}/{secret_id}", 1)]
    # Removing the schedule removed the runs it had planned for the next minutes (the
    # daily 03:00 schedule from prefect.yaml keeps its own).
    soon = now() + timedelta(minutes=3)
    planned = [
        r.expected_start_time
        for r in platform.prefect.read_flow_runs(deployment_filter=by_deployment)
        if r.state_type is StateType.SCHEDULED
        and r.expected_start_time is not None
        and r.expected_start_time < soon
        and (r.expected_start_time.hour, r.expected_start_time.minute) != (3, 0)
    ]
    assert planned == []
