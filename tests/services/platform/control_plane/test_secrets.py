"""Registering secrets with bindings, and requesting rotations (one at a time)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from core.errors import WorkflowEngineUnavailable
from services.platform.control_plane.app import create_app
from services.platform.control_plane.settings import ControlPlaneSettings
from tests.services.platform.control_plane.helpers import (
    SQLITE_ONLY,
    error_code,
    make_client,
    onboard_application,
    register_secret,
    request_environment,
)
from tests.services.platform.control_plane.launchers import RecordingLauncher
from tests.services.platform.control_plane.live import LiveServer

BINDING = {"environment_id": "payments-dev", "target": "k8s:payments/registry"}


@pytest.fixture
def environment(client: TestClient) -> str:
    onboard_application(client, "payments")
    return str(request_environment(client, "payments", "dev")["id"])


def test_register_records_the_secret_with_its_bindings(
    client: TestClient, environment: str
) -> None:
    body = register_secret(client, "harbor-ci", bindings=[BINDING], project="payments")

    assert body["status"] == "active"
    assert body["bindings"] == [BINDING]
    assert body["project"] == "payments"
    assert body["last_rotated_at"] is None and body["stored"] is None
    assert body["lock_holder"] is None
    assert client.get("/api/v1/secrets/harbor-ci").json() == body
    assert client.get("/api/v1/secrets").json() == {"data": [body], "count": 1}
    events = client.get("/api/v1/events", params={"name": "secret_registered"}).json()["data"]
    assert [e["aggregate_id"] for e in events] == ["harbor-ci"]


@pytest.mark.parametrize(
    "change, field",
    [
        ({"provider": "vault"}, "provider"),
        ({"rotation_interval_seconds": 59}, "rotation_interval_seconds"),
        ({"id": "Harbor CI"}, "id"),
        ({"provider_ref": ""}, "provider_ref"),
        ({"bindings": [{"environment_id": "payments-dev"}]}, "bindings.0.target"),
        (
            {"bindings": [{"environment_id": "nope-dev", "target": "k8s:x/y"}]},
            "bindings.0.environment_id",
        ),
        ({"bindings": [BINDING, BINDING]}, "bindings.1"),
    ],
)
@SQLITE_ONLY
def test_bad_bodies_are_422_naming_the_field_and_write_nothing(
    client: TestClient, environment: str, change: dict[str, object], field: str
) -> None:
    body = {"id": "harbor-ci", "provider": "harbor-robot", "provider_ref": "ci", **change}
    response = client.post("/api/v1/secrets", json=body)
    assert response.status_code == 422
    assert error_code(response) == "invalid_input"
    assert [f["field"] for f in response.json()["error"]["details"]["fields"]] == [field]
    assert client.get("/api/v1/secrets").json()["count"] == 0
    assert client.get("/api/v1/events", params={"aggregate": "secret"}).json()["count"] == 0


def test_registering_a_taken_id_is_409(client: TestClient) -> None:
    register_secret(client, "harbor-ci")
    response = client.post(
        "/api/v1/secrets", json={"id": "harbor-ci", "provider": "harbor-robot", "provider_ref": "x"}
    )
    assert response.status_code == 409
    assert error_code(response) == "conflict"


def test_rotation_reserves_the_lock_for_the_run_it_starts(
    client: TestClient, launcher: RecordingLauncher
) -> None:
    register_secret(client, "harbor-ci")
    response = client.post("/api/v1/secrets/harbor-ci/rotations")

    assert response.status_code == 202
    [launch] = launcher.launches
    assert launch.workflow == "SecretRotation"
    assert launch.parameters == {"request": {"secret_id": "harbor-ci"}}
    assert response.json()["flow_run_id"] == launch.flow_run_id
    assert response.json()["flow_run_url"].endswith(f"/runs/flow-run/{launch.flow_run_id}")
    secret = client.get("/api/v1/secrets/harbor-ci").json()
    assert secret["lock_holder"] == launch.flow_run_id
    assert secret["last_flow_run_id"] == launch.flow_run_id
    events = client.get("/api/v1/events", params={"aggregate_id": "harbor-ci"}).json()["data"]
    assert events[0]["name"] == "secret_rotation_requested"


def test_second_rotation_is_409_secret_locked_until_the_run_releases(
    client: TestClient, launcher: RecordingLauncher
) -> None:
    register_secret(client, "harbor-ci")
    run_id = client.post("/api/v1/secrets/harbor-ci/rotations").json()["flow_run_id"]

    refused = client.post("/api/v1/secrets/harbor-ci/rotations")
    assert refused.status_code == 409
    assert error_code(refused) == "secret_locked"
    assert refused.json()["error"]["details"]["lock_holder"] == run_id

    # The reserved run takes its lock, rotates, releases: a new rotation may start.
    assert (
        client.post("/internal/v1/secrets/harbor-ci/lock", json={"holder": run_id}).status_code
        == 200
    )
    assert (
        client.post("/internal/v1/secrets/harbor-ci/unlock", json={"holder": run_id}).status_code
        == 200
    )
    assert client.post("/api/v1/secrets/harbor-ci/rotations").status_code == 202
    assert len(launcher.launches) == 2


def test_rotation_of_a_secret_that_is_not_rotatable_is_409_conflict(
    client: TestClient, launcher: RecordingLauncher
) -> None:
    register_secret(client, "harbor-ci", rotatable=False)
    response = client.post("/api/v1/secrets/harbor-ci/rotations")
    assert response.status_code == 409
    assert error_code(response) == "conflict"
    assert response.json()["error"]["details"]["reason"] == "not_rotatable"
    assert launcher.launches == []


def test_rotation_of_unknown_secret_is_404(client: TestClient) -> None:
    response = client.post("/api/v1/secrets/nope/rotations")
    assert response.status_code == 404
    assert error_code(response) == "not_found"
    assert client.get("/api/v1/secrets/nope").status_code == 404


def test_engine_unavailable_leaves_the_secret_unlocked(
    client: TestClient, settings: ControlPlaneSettings
) -> None:
    register_secret(client, "harbor-ci")
    failing = RecordingLauncher(fail_with=WorkflowEngineUnavailable("down"))
    with make_client(settings, failing) as other:
        response = other.post("/api/v1/secrets/harbor-ci/rotations")
        assert response.status_code == 503
        assert error_code(response) == "workflow_engine_unavailable"
    secret = client.get("/api/v1/secrets/harbor-ci").json()
    assert secret["lock_holder"] is None
    assert client.post("/api/v1/secrets/harbor-ci/rotations").status_code == 202


def test_repeated_rotation_with_the_same_key_is_one_run(
    client: TestClient, launcher: RecordingLauncher
) -> None:
    register_secret(client, "harbor-ci")
    headers = {"Idempotency-Key": "rotate-harbor-ci-2026-11"}
    first = client.post("/api/v1/secrets/harbor-ci/rotations", headers=headers)
    second = client.post("/api/v1/secrets/harbor-ci/rotations", headers=headers)
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()
    assert len(launcher.launches) == 1


@pytest.fixture
def served(settings: ControlPlaneSettings) -> tuple[FastAPI, RecordingLauncher]:
    # A launch that takes a while keeps the race window open.
    launcher = RecordingLauncher(delay_seconds=0.05)
    return create_app(settings, launcher=launcher), launcher


def _concurrently(url: str, n: int, headers: dict[str, str] | None = None) -> list[httpx.Response]:
    barrier = threading.Barrier(n)
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)

    with httpx.Client(base_url=url, timeout=60, limits=limits) as http:

        def one(_: int) -> httpx.Response:
            barrier.wait()  # all threads send at once
            return http.post("/api/v1/secrets/harbor-ci/rotations", headers=headers)

        with ThreadPoolExecutor(max_workers=n) as pool:
            return list(pool.map(one, range(n)))


def test_fifty_concurrent_rotations_start_exactly_one_run(
    served: tuple[FastAPI, RecordingLauncher],
) -> None:
    app, launcher = served
    with LiveServer(app) as server:
        with httpx.Client(base_url=server.url) as http:
            created = http.post(
                "/api/v1/secrets",
                json={"id": "harbor-ci", "provider": "harbor-robot", "provider_ref": "ci"},
            )
            assert created.status_code == 201
        responses = _concurrently(server.url, 50)

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [202] + [409] * 49
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 409} == {
        "secret_locked"
    }
    assert len(launcher.launches) == 1


def test_concurrent_repeats_of_one_key_share_one_run(
    served: tuple[FastAPI, RecordingLauncher],
) -> None:
    app, launcher = served
    with LiveServer(app) as server:
        with httpx.Client(base_url=server.url) as http:
            http.post(
                "/api/v1/secrets",
                json={"id": "harbor-ci", "provider": "harbor-robot", "provider_ref": "ci"},
            )
        responses = _concurrently(server.url, 10, headers={"Idempotency-Key": "same"})

    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["flow_run_id"] for r in responses}) == 1
    assert len(launcher.launches) == 1
