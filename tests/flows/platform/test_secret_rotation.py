"""SecretRotation end to end: Harbor robot refresh, Vault store, bindings, lock, states."""

from __future__ import annotations

from typing import Any

import pytest
from prefect.states import State
from pydantic import SecretStr

from blocks.harbor import HarborProvider
from blocks.platform.workflows import SecretRotationRequest
from blocks.vault import VaultSecretBackend
from flows.platform.results import SecretRotationResult
from flows.platform.secret_rotation import secret_rotation
from sandbox.run import Sandbox
from tests.flows.platform.support import (
    ControlPlaneServer,
    Domain,
    flow_run_id,
    harbor_accepts,
    retry_flow_run,
    retry_waits,
    robot_refreshes,
    robot_secret,
    run,
)

ROBOT_PATCH = r"/api/v2.0/robots/\d+$"


def rotate(secret_id: str) -> State[Any]:
    request = SecretRotationRequest(secret_id=secret_id)
    return run(secret_rotation(request=request, return_state=True))


def stored_value(secret_id: str) -> str:
    return VaultSecretBackend.from_env().read_secret_value(secret_id).get_secret_value()


def vault_path(secret_id: str) -> str:
    return f"/v1/secret/data/idp/secrets/{secret_id}"


def bindings_of(sandbox: Sandbox, secret_id: str) -> list[dict[str, Any]]:
    return [b for b in sandbox.endpoints.state()["bindings"] if b["secret_id"] == secret_id]


def test_rotation_replaces_the_robot_secret_stores_it_and_updates_bindings(
    domain: Domain, sandbox: Sandbox, control_plane_server: ControlPlaneServer
) -> None:
    env_a, env_b = domain.environment(), domain.environment()
    secret_id, robot = domain.secret(environments=(env_a, env_b))
    old = robot_secret(sandbox, robot)

    state = rotate(secret_id)

    assert state.is_completed(), state.message
    result = state.result()
    assert isinstance(result, SecretRotationResult)
    new = stored_value(secret_id)
    assert new != old
    assert not harbor_accepts(sandbox, robot, old)  # the old secret stopped working
    assert harbor_accepts(sandbox, robot, new)  # and the stored one is Harbor's new one
    assert result.stored.path == f"secret/idp/secrets/{secret_id}"
    assert {(b["environment_id"], b["version"]) for b in bindings_of(sandbox, secret_id)} == {
        (env_a, result.stored.version),
        (env_b, result.stored.version),
    }
    secret = domain.secret_state(secret_id)
    assert secret["status"] == "active"
    assert secret["lock_holder"] is None
    assert secret["stored"]["version"] == result.stored.version
    assert secret["last_rotated_at"] is not None
    assert domain.event_names(secret_id) == [
        "secret_registered",
        "secret_rotation_started",
        "workflow_secret_rotation_completed",
    ]
    reported = control_plane_server.reported_run(flow_run_id(state))
    assert reported is not None and reported["result"] == "success"


def test_a_secret_locked_by_another_run_is_refused_and_left_alone(
    domain: Domain, sandbox: Sandbox
) -> None:
    secret_id, robot = domain.secret()
    domain.post(f"/internal/v1/secrets/{secret_id}/lock", {"holder": "another-run"})

    state = rotate(secret_id)

    assert state.is_failed()
    assert "[secret_locked]" in str(state.message)
    secret = domain.secret_state(secret_id)
    assert (secret["status"], secret["lock_holder"]) == ("active", "another-run")
    assert robot_refreshes(sandbox, robot) == 0
    assert domain.event_names(secret_id)[-1] == "workflow_secret_rotation_failed"


def test_a_secret_that_is_not_rotatable_fails_its_precondition(
    domain: Domain, sandbox: Sandbox
) -> None:
    secret_id, robot = domain.secret(rotatable=False)

    state = rotate(secret_id)

    assert state.is_failed() and "[precondition_failed]" in str(state.message)
    assert robot_refreshes(sandbox, robot) == 0


def test_transient_errors_are_retried_and_counted(
    domain: Domain, sandbox: Sandbox, control_plane_server: ControlPlaneServer
) -> None:
    secret_id, robot = domain.secret(environments=(domain.environment(),))
    sandbox.harbor.server.faults.add(method="PATCH", path=ROBOT_PATCH, statuses=[503, 503, 200])

    state = rotate(secret_id)

    assert state.is_completed(), state.message
    assert harbor_accepts(sandbox, robot, stored_value(secret_id))
    reported = control_plane_server.reported_run(flow_run_id(state))
    assert reported is not None and reported["retries"] == 2


def test_harbor_rate_limits_are_waited_out_as_retry_after_says(
    domain: Domain, sandbox: Sandbox, control_plane_server: ControlPlaneServer
) -> None:
    secret_id, _ = domain.secret()
    sandbox.harbor.server.faults.add(
        method="PATCH", path=ROBOT_PATCH, statuses=[429, 200], retry_after=1
    )

    state = rotate(secret_id)

    assert state.is_completed(), state.message
    waits = run(retry_waits(flow_run_id(state), "RotateSecret"))
    assert len(waits) == 1 and waits[0] >= 1.0  # the backoff alone would be 5 ms
    reported = control_plane_server.reported_run(flow_run_id(state))
    assert reported is not None and reported["retries"] == 1


def test_a_failing_store_retries_the_step_and_stores_the_value_harbor_accepts(
    domain: Domain, sandbox: Sandbox, control_plane_server: ControlPlaneServer
) -> None:
    secret_id, robot = domain.secret()
    sandbox.vault.server.faults.add(
        method="POST", path=vault_path(secret_id), statuses=[503, 503, 200]
    )

    state = rotate(secret_id)

    assert state.is_completed(), state.message
    # Each attempt of RotateSecret issues its own value (the value never leaves the step,
    # and one that was never stored is used by nobody); the stored one is the live one.
    assert robot_refreshes(sandbox, robot) == 3
    assert harbor_accepts(sandbox, robot, stored_value(secret_id))
    reported = control_plane_server.reported_run(flow_run_id(state))
    assert reported is not None and reported["retries"] == 2


@pytest.mark.parametrize("status, code", [(401, "unauthorized"), (403, "forbidden")])
def test_a_permanent_harbor_error_fails_at_once_and_keeps_the_old_secret(
    status: int,
    code: str,
    domain: Domain,
    sandbox: Sandbox,
    control_plane_server: ControlPlaneServer,
) -> None:
    secret_id, robot = domain.secret()
    old = robot_secret(sandbox, robot)
    sandbox.harbor.server.faults.add(method="PATCH", path=ROBOT_PATCH, statuses=[status])

    state = rotate(secret_id)

    assert state.is_failed()
    assert f"[{code}]" in str(state.message)
    secret = domain.secret_state(secret_id)
    assert (secret["status"], secret["lock_holder"]) == ("rotation_failed", None)
    assert "before the provider value changed" in secret["status_reason"]
    assert harbor_accepts(sandbox, robot, old)
    failed = domain.events(secret_id)[-1]
    assert failed["name"] == "workflow_secret_rotation_failed"
    assert failed["payload"]["error_code"] == code
    assert failed["payload"]["secret_status"] == "rotation_failed"
    reported = control_plane_server.reported_run(flow_run_id(state))
    assert reported is not None and (reported["result"], reported["retries"]) == ("failure", 0)


def test_a_store_that_never_succeeds_records_that_the_provider_value_changed(
    domain: Domain, sandbox: Sandbox
) -> None:
    secret_id, robot = domain.secret()
    old = robot_secret(sandbox, robot)
    sandbox.vault.server.faults.add(method="POST", path=vault_path(secret_id), statuses=[403])

    state = rotate(secret_id)

    assert state.is_failed() and "[forbidden]" in str(state.message)
    secret = domain.secret_state(secret_id)
    assert (secret["status"], secret["lock_holder"]) == ("rotation_failed", None)
    assert "provider issued a new value but storing it failed" in secret["status_reason"]
    assert not harbor_accepts(sandbox, robot, old)  # the truth: consumers need a rotation


def test_failed_bindings_leave_the_new_value_recorded_and_a_retry_finishes_the_rotation(
    domain: Domain, sandbox: Sandbox
) -> None:
    env_id = domain.environment()
    secret_id, robot = domain.secret(environments=(env_id,))
    sandbox.endpoints.server.faults.add(path="/secrets/bindings/update", statuses=[403])

    first = rotate(secret_id)

    assert first.is_failed() and "[forbidden]" in str(first.message)
    secret = domain.secret_state(secret_id)
    assert (secret["status"], secret["lock_holder"]) == ("rotated_pending_bindings", None)
    new = stored_value(secret_id)
    assert secret["stored"]["version"] == 1
    assert harbor_accepts(sandbox, robot, new)  # never lost: stored before bindings failed

    retried = run(retry_flow_run(secret_rotation, flow_run_id(first)))

    assert retried.is_completed(), retried.message
    assert robot_refreshes(sandbox, robot) == 1  # the retry reused the stored rotation
    assert stored_value(secret_id) == new
    assert [b["version"] for b in bindings_of(sandbox, secret_id)] == [1]
    assert domain.secret_state(secret_id)["status"] == "active"


class Crash(BaseException):
    """What a killed worker looks like from inside the run: not an ``Exception``."""


def test_a_crashed_run_releases_the_lock(
    domain: Domain, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_id, _ = domain.secret()

    def crash(self: HarborProvider, robot_id: int) -> SecretStr:
        raise Crash

    monkeypatch.setattr(HarborProvider, "refresh_robot_secret", crash)

    with pytest.raises(Crash):
        rotate(secret_id)

    secret = domain.secret_state(secret_id)
    assert secret["lock_holder"] is None
    assert secret["status"] == "rotating"  # the truth is unknown; the next rotation may run
