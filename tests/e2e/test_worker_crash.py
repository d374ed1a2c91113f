"""A worker killed with SIGKILL in the middle of two provisioning runs: both runs are
recovered by the platform's automations (tests/e2e/recovery.py) and finish with nothing
created twice.

Each environment has two secrets and the sandbox Vault holds back its answer to the
write of the second one, so both runs are inside ProvisionSecrets, both secrets already
written but the step not finished, when the worker's process group is killed. Run A's
flow-run process (its own session) outlives the worker and the engine records the run
Crashed; run B's process is killed too, as when a whole host is lost, so only its
missing heartbeats tell. A replacement worker starts at once. The second attempts replay
the repository steps from cache and run ProvisionSecrets again: both secrets exist
already (create-only), so each keeps its single version.
"""

from __future__ import annotations

import os
import signal
from functools import partial
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.schemas.objects import State, StateType

from deployments.recovery import RESCHEDULE_MESSAGE, ZOMBIE_MESSAGE
from idp.stack import descendants
from tests.e2e.support import (
    HEARTBEAT_SECONDS,
    SLOW_MACHINE_TIMEOUT,
    ZOMBIE_GRACE_SECONDS,
    Environment,
    Platform,
    assert_environment_materialized,
    wait_until,
)

pytestmark = [pytest.mark.e2e, SLOW_MACHINE_TIMEOUT]

SECRETS = ("app-config", "db-password")
# Longer than the Vault client waits (10 s): the dead attempt never gets its answer. The
# kill follows the write within a second or so, well inside the client's timeout.
HELD_ANSWER_MS = 30_000
FINISHED = frozenset({StateType.COMPLETED, StateType.FAILED, StateType.CANCELLED})


def flow_run_processes(worker_pid: int) -> dict[str, list[int]]:
    """Flow-run id -> the worker's descendant processes that run it."""
    found: dict[str, list[int]] = {}
    for pid in descendants(worker_pid):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for item in environ:
            if item.startswith(b"PREFECT__FLOW_RUN_ID="):
                found.setdefault(item.split(b"=", 1)[1].decode(), []).append(pid)
    return found


def gone(pid: int) -> bool:
    """Exited (a zombie waiting for a reaper counts: it runs nothing)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def secrets_written(platform: Platform, env_ids: list[str]) -> bool:
    vault = platform.vault_keys()
    return all(f"idp/appenv/{e}/{name}" in vault for e in env_ids for name in SECRETS)


def in_step(platform: Platform, run_id: UUID, step: str) -> bool:
    return any(
        t.name.startswith(step) and t.state_type is StateType.RUNNING
        for t in platform.task_runs(run_id)
    )


def replayed_from_cache(platform: Platform, run_id: UUID, step: str) -> bool:
    return any(
        t.name.startswith(step) and t.state_name == "Cached" for t in platform.task_runs(run_id)
    )


def task_states(platform: Platform, run_id: UUID) -> list[tuple[str, str | None]]:
    return [(t.name, t.state_name) for t in platform.task_runs(run_id)]


def crash_then_retry(states: list[State]) -> tuple[State, State]:
    """The Crashed state and the rescheduling that followed it."""
    types = [s.type for s in states]
    assert StateType.CRASHED in types, types
    crashed = types.index(StateType.CRASHED)
    assert types[crashed + 1] is StateType.SCHEDULED, types
    assert types[-2:] == [StateType.RUNNING, StateType.COMPLETED], types
    return states[crashed], states[crashed + 1]


def test_runs_of_a_killed_worker_are_recovered_without_duplicates(
    platform: Platform, environment: Environment
) -> None:
    app_id = environment.application_id
    stack = platform.stack
    worker = stack.process("worker")
    held = rf"/v1/secret/data/idp/appenv/{app_id}-crash-[ab]/{SECRETS[1]}$"
    platform.add_fault("vault", method="POST", path=held, response_delay_ms=HELD_ANSWER_MS)
    try:
        envs = [
            platform.command(
                f"/api/v1/applications/{app_id}/environments",
                {"name": name, "secrets": list(SECRETS)},
            )
            for name in ("crash-a", "crash-b")
        ]
        env_ids = [str(env["id"]) for env in envs]
        run_a, run_b = (UUID(env["last_flow_run_id"]) for env in envs)
        wait_until(
            lambda: (
                secrets_written(platform, env_ids)
                and all(in_step(platform, run_id, "ProvisionSecrets") for run_id in (run_a, run_b))
            ),
            timeout=120,
            what="both runs inside ProvisionSecrets with their secrets written",
        )
        engines = flow_run_processes(worker.popen.pid)
        assert str(run_a) in engines and str(run_b) in engines, engines

        os.killpg(worker.popen.pid, signal.SIGKILL)
        for pid in engines[str(run_b)]:
            os.kill(pid, signal.SIGKILL)
        worker.popen.wait(timeout=10)
    finally:
        platform.clear_faults("vault")
        if stack.process("worker").popen.poll() is not None:
            stack.start_worker()  # what a supervisor (systemd, Kubernetes) would do

    wait_until(
        lambda: all(gone(pid) for pids in engines.values() for pid in pids),
        timeout=30,
        what="the killed worker's flow-run processes to exit",
    )
    # Zombie detection takes up to heartbeat + grace after the last heartbeat.
    budget = HEARTBEAT_SECONDS + ZOMBIE_GRACE_SECONDS + 90
    for run_id in (run_a, run_b):
        run = platform.wait_for_run(run_id, timeout=budget, until=FINISHED)
        platform.assert_completed(run)
        assert run.run_count == 2
        crashed, rescheduled = crash_then_retry(platform.prefect.read_flow_run_states(run_id))
        assert rescheduled.message == RESCHEDULE_MESSAGE
        if run_id == run_b:  # nobody but the heartbeat automation could tell
            assert crashed.message == ZOMBIE_MESSAGE
        # A task run's states reach the API through the engine's events, after the flow
        # run's own final state: the replayed step shows up as Cached a moment later.
        wait_until(
            partial(replayed_from_cache, platform, run_id, "MaterializeRepositories"),
            timeout=60,
            what=f"run {run_id} to show MaterializeRepositories replayed from cache",
            seen=partial(task_states, platform, run_id),
        )

    for env_id in env_ids:
        assert platform.get(f"/api/v1/environments/{env_id}")["status"] == "provisioned"
        assert_environment_materialized(platform, env_id, SECRETS)
        events = platform.event_names(env_id)
        assert events.count("workflow_appenv_provisioning_completed") == 1, events
