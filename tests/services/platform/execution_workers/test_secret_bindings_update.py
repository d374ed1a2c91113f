"""``/secrets/bindings/update``: the three value sources, one side effect per request, and
no secret value in any answer or log line."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sandbox.harbor import RobotSpec
from sandbox.run import HARBOR_PROJECT, Sandbox
from services.platform.execution_workers.app import create_app
from tests.services.platform.execution_workers.support import unique, workers_settings

PATH = "/secrets/bindings/update"


def _robot(sandbox: Sandbox, **spec: Any) -> str:
    """A fresh project robot in the sandbox's Harbor; returns its short name."""
    name = unique("bot")
    sandbox.harbor.add_robots([RobotSpec(name=name, project=HARBOR_PROJECT, **spec)])
    return name


def _refreshes(sandbox: Sandbox, short_name: str) -> int:
    full = f"robot${HARBOR_PROJECT}+{short_name}"
    robots = [r for r in sandbox.harbor.state()["robots"] if r["name"] == full]
    return int(robots[0]["refreshes"])


def _rotation(secret_id: str, robot: str, env: str, rotation_id: str = "run-1") -> dict[str, Any]:
    return {
        "secret_id": secret_id,
        "source": {
            "kind": "harbor-rotation",
            "robot": robot,
            "project": HARBOR_PROJECT,
            "rotation_id": rotation_id,
        },
        "bindings": [{"environment_id": env, "target": f"k8s:{env}/registry"}],
    }


def test_harbor_rotation_rotates_stores_and_updates_every_binding(
    client: TestClient, sandbox: Sandbox
) -> None:
    robot, secret_id, env = _robot(sandbox), unique("harbor"), unique("env")
    full_name = f"robot${HARBOR_PROJECT}+{robot}"
    before = sandbox.harbor.robot_secret(full_name)

    response = client.post(PATH, json=_rotation(secret_id, robot, env))

    assert response.status_code == 200, response.text
    body = response.json()
    new_value = sandbox.harbor.robot_secret(full_name)
    assert new_value != before and _refreshes(sandbox, robot) == 1
    assert sandbox.endpoints.secret_value(secret_id) == new_value  # stored at once
    assert body["rotated"] is True and body["robot"]["name"] == full_name
    assert body["stored"] == {"backend": "http", "path": f"secrets/{secret_id}", "version": 1}
    assert body["bindings"] == [
        {
            "secret_id": secret_id,
            "environment_id": env,
            "target": f"k8s:{env}/registry",
            "version": 1,
        }
    ]
    assert new_value not in response.text


def test_the_same_rotation_twice_rotates_once(client: TestClient, sandbox: Sandbox) -> None:
    robot, secret_id, env = _robot(sandbox), unique("harbor"), unique("env")
    first = client.post(PATH, json=_rotation(secret_id, robot, env)).json()
    second = client.post(PATH, json=_rotation(secret_id, robot, env)).json()
    third = client.post(PATH, json=_rotation(secret_id, robot, env, rotation_id="run-2")).json()

    assert (first["rotated"], second["rotated"]) == (True, False)
    assert second["stored"] == first["stored"]
    assert third["rotated"] is True and third["stored"]["version"] == 2
    assert _refreshes(sandbox, robot) == 2


def test_a_stale_replay_never_moves_bindings_back(client: TestClient, sandbox: Sandbox) -> None:
    robot, secret_id, env = _robot(sandbox), unique("harbor"), unique("env")
    client.post(PATH, json=_rotation(secret_id, robot, env, rotation_id="run-1"))
    client.post(PATH, json=_rotation(secret_id, robot, env, rotation_id="run-2"))

    stale = client.post(PATH, json=_rotation(secret_id, robot, env, rotation_id="run-1"))

    assert stale.status_code == 409
    assert stale.json()["error"]["code"] == "resource_mismatch"
    bound = [b for b in sandbox.endpoints.state()["bindings"] if b["secret_id"] == secret_id]
    assert [b["version"] for b in bound] == [2]
    assert _refreshes(sandbox, robot) == 2


def test_a_new_value_is_stored_once_and_never_returned(
    client: TestClient, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    secret_id, value = unique("harbor"), "n3w-s3cret-value-" + unique("v")
    body = {"secret_id": secret_id, "source": {"kind": "value", "value": value}}
    with caplog.at_level(logging.DEBUG):
        first = client.post(PATH, json=body)
        second = client.post(PATH, json=body)

    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert first.json()["rotated"] is False and first.json()["bindings"] == []
    stored = [v for v in sandbox.endpoints.state()["values"] if v["secret_id"] == secret_id]
    assert [v["version"] for v in stored] == [1]  # one write, though /values adds a version
    assert sandbox.endpoints.secret_value(secret_id) == value
    assert value not in first.text + second.text + caplog.text


def test_a_stored_value_only_moves_the_bindings(client: TestClient, sandbox: Sandbox) -> None:
    secret_id, envs = unique("harbor"), [unique("env"), unique("env")]
    body = {
        "secret_id": secret_id,
        "source": {"kind": "stored", "stored": {"backend": "vault", "path": "p", "version": 7}},
        "bindings": [{"environment_id": e, "target": f"k8s:{e}/registry"} for e in envs],
    }
    first = client.post(PATH, json=body)
    second = client.post(PATH, json=body)

    assert first.status_code == 200 and first.json() == second.json()
    bound = [b for b in sandbox.endpoints.state()["bindings"] if b["secret_id"] == secret_id]
    assert sorted((b["environment_id"], b["version"]) for b in bound) == sorted(
        (e, 7) for e in envs
    )


def test_rotation_without_harbor_configured_is_a_precondition(
    sandbox: Sandbox,
) -> None:
    settings = workers_settings(
        sandbox, HARBOR_URL=None, HARBOR_ROBOT_USERNAME=None, HARBOR_ROBOT_PASSWORD=None
    )
    with TestClient(create_app(settings)) as client:
        response = client.post(PATH, json=_rotation("harbor-ci", "ci", "env-1"))
    assert response.status_code == 412
    assert response.json()["error"]["code"] == "precondition_failed"
    assert response.json()["error"]["details"] == {"provider": "registry"}


def test_a_disabled_robot_is_not_rotated(client: TestClient, sandbox: Sandbox) -> None:
    robot = _robot(sandbox, disable=True)
    response = client.post(PATH, json=_rotation(unique("harbor"), robot, unique("env")))
    assert response.status_code == 412
    assert response.json()["error"]["code"] == "precondition_failed"
    assert _refreshes(sandbox, robot) == 0


def test_a_failed_store_after_the_refresh_says_so(client: TestClient, sandbox: Sandbox) -> None:
    robot = _robot(sandbox)
    sandbox.endpoints.server.faults.add(statuses=[503], path="/values")
    response = client.post(PATH, json=_rotation(unique("harbor"), robot, unique("env")))

    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "upstream_unavailable"
    assert error["details"]["rotation_stage"] == "store"  # the old credential is dead


@pytest.mark.parametrize(
    "source",
    [
        {"kind": "harbor-rotation", "robot": "ci"},  # no rotation_id
        {"kind": "value", "value": ""},
        {"kind": "stored", "stored": {"backend": "http", "path": "p", "version": 0}},
        {"kind": "telepathy"},
    ],
)
def test_malformed_sources_are_invalid_input(client: TestClient, source: dict[str, Any]) -> None:
    response = client.post(PATH, json={"secret_id": "harbor-ci", "source": source})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_input"
