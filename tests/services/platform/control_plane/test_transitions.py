"""Status moves requested by workflows: the lifecycle rules of blocks.platform.domain, enforced by
the control plane (409 illegal_transition) and never bypassed."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from enum import StrEnum
from typing import Any

import pytest
from fastapi.testclient import TestClient

from blocks.platform.domain import (
    APPLICATION_TRANSITIONS,
    ENVIRONMENT_TRANSITIONS,
    SECRET_TRANSITIONS,
    ApplicationStatus,
    EnvironmentStatus,
    SecretStatus,
)
from tests.services.platform.control_plane.helpers import (
    SQLITE_ONLY,
    error_code,
    onboard_application,
    register_application,
    register_secret,
    request_environment,
)


def _path_to(table: dict, start: StrEnum, goal: StrEnum) -> list[StrEnum]:
    """The legal moves from ``start`` to ``goal`` (breadth first)."""
    queue: deque[tuple[StrEnum, list[StrEnum]]] = deque([(start, [])])
    seen = {start}
    while queue:
        status, path = queue.popleft()
        if status == goal:
            return path
        for nxt in sorted(table[status]):
            if nxt not in seen:
                seen.add(nxt)
                queue.append((nxt, [*path, nxt]))
    raise AssertionError(f"{goal} unreachable from {start}")


def _illegal_pairs(table: dict) -> list[tuple[StrEnum, StrEnum]]:
    return [
        (current, target)
        for current in table
        for target in type(current)
        if target != current and target not in table[current]
    ]


Factory = Callable[[TestClient, int], str]


def _application(client: TestClient, index: int) -> str:
    return str(register_application(client, f"app-{index}")["id"])


def _environment(client: TestClient, index: int) -> str:
    if client.get("/api/v1/applications/host").status_code == 404:
        onboard_application(client, "host")
    return str(request_environment(client, "host", f"e{index}")["id"])


def _secret(client: TestClient, index: int) -> str:
    return str(register_secret(client, f"secret-{index}")["id"])


CASES: dict[str, tuple[dict[Any, frozenset[Any]], StrEnum, Factory]] = {
    "applications": (APPLICATION_TRANSITIONS, ApplicationStatus.REGISTERED, _application),
    "environments": (ENVIRONMENT_TRANSITIONS, EnvironmentStatus.REQUESTED, _environment),
    "secrets": (SECRET_TRANSITIONS, SecretStatus.ACTIVE, _secret),
}


@pytest.mark.parametrize("resource", sorted(CASES))
def test_every_illegal_transition_is_409_and_changes_nothing(
    client: TestClient, resource: str
) -> None:
    table, initial, create = CASES[resource]
    outcomes = {}
    for index, (current, target) in enumerate(_illegal_pairs(table)):
        entity = create(client, index)
        url = f"/internal/v1/{resource}/{entity}/transitions"
        for step in _path_to(table, initial, current):
            assert client.post(url, json={"status": step}).status_code == 200
        response = client.post(url, json={"status": target, "flow_run_id": "run-x"})
        after = client.get(f"/internal/v1/{resource}/{entity}").json()
        outcomes[f"{current}->{target}"] = (
            response.status_code,
            error_code(response),
            after["status"],
        )

    assert outcomes == {
        f"{current}->{target}": (409, "illegal_transition", current.value)
        for current, target in _illegal_pairs(table)
    }


def test_application_lifecycle_records_run_and_reason(client: TestClient) -> None:
    register_application(client, "payments")
    url = "/internal/v1/applications/payments/transitions"
    moves = [
        ("onboarding", "run-1", None),
        ("onboarding_failed", "run-1", "GitHub said 403"),
        ("onboarding", "run-2", None),
        ("onboarding", "run-2", None),  # the same status again: an idempotent retry
        ("onboarded", "run-2", None),
    ]
    for status, run, reason in moves:
        response = client.post(url, json={"status": status, "flow_run_id": run, "reason": reason})
        assert response.status_code == 200, response.text
        assert response.json()["status"] == status
        assert response.json()["status_reason"] == reason
        assert response.json()["last_flow_run_id"] == run
    public = client.get("/api/v1/applications/payments").json()
    assert public["status"] == "onboarded"
    assert public["last_flow_run_url"].endswith("/runs/flow-run/run-2")


def test_environment_lifecycle(client: TestClient) -> None:
    onboard_application(client, "payments")
    request_environment(client, "payments", "dev")
    url = "/internal/v1/environments/payments-dev/transitions"
    for status in ("provisioning", "provisioned", "provisioning", "provisioning_failed"):
        assert client.post(url, json={"status": status}).json()["status"] == status


@pytest.mark.parametrize(
    "body, field",
    [
        ({"status": "done"}, "status"),
        ({}, "status"),
        ({"status": "onboarding", "reason": "x" * 501}, "reason"),
    ],
)
@SQLITE_ONLY
def test_bad_transition_bodies_are_422(
    client: TestClient, body: dict[str, str], field: str
) -> None:
    register_application(client, "payments")
    response = client.post("/internal/v1/applications/payments/transitions", json=body)
    assert response.status_code == 422
    assert [f["field"] for f in response.json()["error"]["details"]["fields"]] == [field]


@pytest.mark.parametrize("resource", sorted(CASES))
def test_transition_of_unknown_id_is_404(client: TestClient, resource: str) -> None:
    table, initial, _ = CASES[resource]
    target = sorted(table[initial])[0]
    response = client.post(f"/internal/v1/{resource}/nope/transitions", json={"status": target})
    assert response.status_code == 404
    assert error_code(response) == "not_found"


def test_while_locked_only_the_holder_moves_a_secret(client: TestClient) -> None:
    register_secret(client, "harbor-ci")
    assert (
        client.post("/internal/v1/secrets/harbor-ci/lock", json={"holder": "run-a"}).status_code
        == 200
    )
    url = "/internal/v1/secrets/harbor-ci/transitions"

    for intruder in ({"flow_run_id": "run-b"}, {}):
        response = client.post(url, json={"status": "rotating", **intruder})
        assert response.status_code == 409
        assert error_code(response) == "secret_locked"
    assert client.get("/internal/v1/secrets/harbor-ci").json()["status"] == "active"

    moved = client.post(url, json={"status": "rotating", "flow_run_id": "run-a"})
    assert moved.status_code == 200
    assert moved.json()["status"] == "rotating"


def test_a_secret_that_is_not_rotatable_never_moves_to_rotating(client: TestClient) -> None:
    register_secret(client, "manual", rotatable=False)
    response = client.post(
        "/internal/v1/secrets/manual/transitions", json={"status": "rotating", "flow_run_id": "r"}
    )
    assert response.status_code == 409
    assert error_code(response) == "conflict"
    assert response.json()["error"]["details"]["reason"] == "not_rotatable"
    assert client.get("/internal/v1/secrets/manual").json()["status"] == "active"
