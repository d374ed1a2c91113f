"""SecretRotationSweep end to end, against a control plane of its own (so that exactly the
test's secrets are due)."""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
from prefect.client.schemas.objects import FlowRun
from prefect.states import Cancelled, Crashed, State
from sqlalchemy import create_engine, update
from sqlmodel import col

from blocks.platform.workflows import SecretRotationSweepRequest
from blocks.vault import VaultSecretBackend
from flows.platform.results import RotationOutcome, SecretRotationSweepResult
from flows.platform.secret_rotation_sweep import release_locks_on_abort, secret_rotation_sweep
from sandbox.run import Sandbox
from services.platform.control_plane.models import Secret
from services.platform.control_plane.models.common import utcnow
from tests.flows.platform.support import (
    ControlPlaneServer,
    Domain,
    flow_run_id,
    harbor_accepts,
    read_artifacts,
    run,
    unique,
)


def sweep(**request: Any) -> State[Any]:
    return run(
        secret_rotation_sweep(request=SecretRotationSweepRequest(**request), return_state=True)
    )


def test_a_sweep_rotates_every_due_secret_and_one_failure_stops_no_other(
    own_control_plane: ControlPlaneServer, sandbox: Sandbox
) -> None:
    domain = Domain(own_control_plane, sandbox)
    env_id = domain.environment()
    secrets = dict(domain.secret(environments=(env_id,)) for _ in range(19))
    broken, _ = domain.secret(robot=unique("no-such-robot"))  # Harbor does not know it

    state = sweep(max_concurrency=5)

    assert state.is_completed(), state.message
    result = state.result()
    assert isinstance(result, SecretRotationSweepResult)
    assert (result.due, result.rotated, result.failed) == (20, 19, 1)
    outcomes = {item.secret_id: item for item in result.items}
    assert set(outcomes) == {*secrets, broken}
    assert outcomes[broken].outcome is RotationOutcome.FAILED
    assert outcomes[broken].error_code == "not_found"
    assert domain.secret_state(broken)["status"] == "rotation_failed"
    assert domain.event_names(broken)[-1] == "workflow_secret_rotation_failed"
    vault = VaultSecretBackend.from_env()
    for secret_id, robot in secrets.items():
        assert outcomes[secret_id].outcome is RotationOutcome.ROTATED
        assert domain.secret_state(secret_id)["status"] == "active"
        value = vault.read_secret_value(secret_id).get_secret_value()
        assert harbor_accepts(sandbox, robot, value)
    artifacts = {a.type: a for a in run(read_artifacts(flow_run_id(state)))}
    assert len(json.loads(str(artifacts["table"].data))) == 20
    assert float(artifacts["progress"].data) == 100.0  # type: ignore[arg-type]
    reported = own_control_plane.reported_run(flow_run_id(state))
    assert reported is not None
    assert (reported["workflow"], reported["result"]) == ("SecretRotationSweep", "failure")


def test_a_sweep_skips_secrets_another_run_is_rotating(
    own_control_plane: ControlPlaneServer, sandbox: Sandbox
) -> None:
    domain = Domain(own_control_plane, sandbox)
    free, _ = domain.secret()
    locked, _ = domain.secret()
    domain.post(f"/internal/v1/secrets/{locked}/lock", {"holder": "another-run"})

    result = sweep().result()

    outcomes = {item.secret_id: item.outcome for item in result.items}
    assert outcomes == {free: RotationOutcome.ROTATED, locked: RotationOutcome.SKIPPED}
    assert domain.secret_state(locked)["lock_holder"] == "another-run"


def test_a_sweep_takes_over_the_stale_lock_of_a_run_that_died_rotating(
    own_control_plane: ControlPlaneServer, sandbox: Sandbox
) -> None:
    domain = Domain(own_control_plane, sandbox)
    orphan, _ = domain.secret()
    domain.post(f"/internal/v1/secrets/{orphan}/lock", {"holder": "dead-run"})
    domain.post(
        f"/internal/v1/secrets/{orphan}/transitions",
        {"status": "rotating", "flow_run_id": "dead-run"},
    )
    engine = create_engine(own_control_plane.database_url)
    try:
        with engine.begin() as connection:  # taken two hours ago; its run never came back
            connection.execute(
                update(Secret)
                .where(col(Secret.id) == orphan)
                .values(lock_acquired_at=utcnow() - timedelta(hours=2))
            )
    finally:
        engine.dispose()

    result = sweep().result()

    assert [(item.secret_id, item.outcome) for item in result.items] == [
        (orphan, RotationOutcome.ROTATED)
    ]
    state = domain.secret_state(orphan)
    assert (state["status"], state["lock_holder"]) == ("active", None)
    assert state["stored"] is not None


def test_a_sweep_keeps_at_most_max_concurrency_rotations_in_flight(
    own_control_plane: ControlPlaneServer, sandbox: Sandbox
) -> None:
    domain = Domain(own_control_plane, sandbox)
    for _ in range(12):
        domain.secret()
    # Each Harbor refresh takes 200 ms: 12 of them, 3 at a time, need at least 0.8 s;
    # unbounded they would all overlap in ~0.2 s.
    sandbox.harbor.server.faults.add(method="PATCH", path=r"/robots/\d+$", latency_ms=200)

    started = time.monotonic()
    result = sweep(max_concurrency=3).result()
    elapsed = time.monotonic() - started

    assert result.rotated == 12
    assert elapsed >= 0.8


@pytest.mark.parametrize("ending", [Cancelled, Crashed])
def test_a_sweep_that_is_cancelled_or_crashes_releases_the_locks_it_held(
    own_control_plane: ControlPlaneServer, sandbox: Sandbox, ending: Any
) -> None:
    # Cancellation and crash skip each rotation's own unlock; Prefect then calls the
    # flow's hooks with the run (the worker does, after killing a cancelled run's process).
    assert release_locks_on_abort in secret_rotation_sweep.on_cancellation_hooks
    assert release_locks_on_abort in secret_rotation_sweep.on_crashed_hooks
    domain = Domain(own_control_plane, sandbox)
    aborted = FlowRun(id=uuid.uuid4(), flow_id=uuid.uuid4(), name="aborted-sweep")
    in_flight = sorted(domain.secret()[0] for _ in range(3))
    others, _ = domain.secret()
    for secret_id in in_flight:
        domain.post(f"/internal/v1/secrets/{secret_id}/lock", {"holder": str(aborted.id)})
    domain.post(f"/internal/v1/secrets/{others}/lock", {"holder": "another-run"})

    run(release_locks_on_abort(secret_rotation_sweep, aborted, ending()))

    for secret_id in in_flight:
        assert domain.secret_state(secret_id)["lock_holder"] is None
    assert domain.secret_state(others)["lock_holder"] == "another-run"
