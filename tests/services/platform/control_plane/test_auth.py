"""X-Internal-Token on every internal endpoint (seed 000): with INTERNAL_AUTH_TOKEN set,
missing or wrong → 401 unauthorized, right → the endpoint's normal answer; unset → no
header needed. The table below must name every /internal/v1 route the app serves."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from core.internal_auth import INTERNAL_TOKEN_HEADER
from services.platform.control_plane.app import create_app
from services.platform.control_plane.settings import ControlPlaneSettings
from tests.services.platform.control_plane.launchers import RecordingLauncher

TOKEN = "s3cr3t-internal-token"
STORED = {"backend": "vault", "path": "secret/data/harbor-ci", "version": 1}
# (method, route template) -> (concrete path, body, status with the right token)
CALLS: dict[tuple[str, str], tuple[str, Any, int]] = {
    ("GET", "/internal/v1/applications/{application_id}"): (
        "/internal/v1/applications/payments", None, 200),
    ("POST", "/internal/v1/applications/{application_id}/transitions"): (
        "/internal/v1/applications/payments/transitions", {"status": "onboarding"}, 200),
    ("GET", "/internal/v1/environments/{environment_id}"): (
        "/internal/v1/environments/nope-dev", None, 404),
    ("POST", "/internal/v1/environments/{environment_id}/transitions"): (
        "/internal/v1/environments/nope-dev/transitions", {"status": "provisioning"}, 404),
    ("GET", "/internal/v1/secrets/{secret_id}"): ("/internal/v1/secrets/harbor-ci", None, 200),
    ("POST", "/internal/v1/secrets/{secret_id}/transitions"): (
        "/internal/v1/secrets/harbor-ci/transitions",
        {"status": "rotating", "flow_run_id": "run-1"}, 200),
    ("POST", "/internal/v1/secrets/{secret_id}/lock"): (
        "/internal/v1/secrets/harbor-ci/lock", {"holder": "run-1"}, 200),
    ("POST", "/internal/v1/secrets/{secret_id}/rotations"): (
        "/internal/v1/secrets/harbor-ci/rotations",
        {"flow_run_id": "run-1", "stored": STORED}, 200),
    ("POST", "/internal/v1/secrets/{secret_id}/unlock"): (
        "/internal/v1/secrets/harbor-ci/unlock", {"holder": "run-1"}, 200),
    ("POST", "/internal/v1/locks/release"): (
        "/internal/v1/locks/release", {"holder": "run-1"}, 200),
    ("GET", "/internal/v1/rotations/due"): ("/internal/v1/rotations/due", None, 200),
    ("POST", "/internal/v1/events"): (
        "/internal/v1/events",
        {"name": "application_created", "aggregate": "application", "aggregate_id": "payments"},
        201),
    ("POST", "/internal/v1/workflow-runs"): (
        "/internal/v1/workflow-runs",
        {"workflow": "SecretRotation", "flow_run_id": "run-1", "result": "success",
         "duration_seconds": 1.5, "retries": 0},
        201),
    ("POST", "/internal/v1/workflow-runs/{flow_run_id}/compensations"): (
        "/internal/v1/workflow-runs/run-1/compensations",
        {"key": "0:ProvisionSecrets:ab12", "step": "ProvisionSecrets", "undo": "DeleteSecrets",
         "arguments": {"environment_id": "payments-dev"}},
        201),
    ("GET", "/internal/v1/workflow-runs/{flow_run_id}/compensations"): (
        "/internal/v1/workflow-runs/run-1/compensations", None, 200),
    ("POST", "/internal/v1/workflow-runs/{flow_run_id}/compensations/{entry_id}/settle"): (
        f"/internal/v1/workflow-runs/run-1/compensations/{uuid.uuid4()}/settle",
        {"error": None}, 404),
}  # fmt: skip


def _client(database_url: str, token: str | None) -> TestClient:
    settings = ControlPlaneSettings(
        DATABASE_URL=database_url, INTERNAL_AUTH_TOKEN=SecretStr(token) if token else None
    )
    return TestClient(create_app(settings, launcher=RecordingLauncher()))


@pytest.fixture
def secured(database_url: str) -> Iterator[TestClient]:
    with _client(database_url, TOKEN) as client:
        client.post("/api/v1/applications", json={"name": "payments", "team": "pay"})
        client.post(
            "/api/v1/secrets",
            json={"id": "harbor-ci", "provider": "harbor-robot", "provider_ref": "ci"},
        )
        yield client


def test_the_table_covers_every_internal_route(secured: TestClient) -> None:
    paths = secured.get("/openapi.json").json()["paths"]
    served = {
        (method.upper(), path)
        for path, operations in paths.items()
        if path.startswith("/internal/")
        for method in operations
    }
    assert served == set(CALLS)


@pytest.mark.parametrize(
    "headers", [{}, {INTERNAL_TOKEN_HEADER: "wrong"}, {INTERNAL_TOKEN_HEADER: ""}]
)
def test_missing_or_wrong_token_is_401_everywhere(
    secured: TestClient, headers: dict[str, str]
) -> None:
    answers = {
        key: secured.request(key[0], path, json=body, headers=headers)
        for key, (path, body, _) in CALLS.items()
    }
    assert {key: r.status_code for key, r in answers.items()} == dict.fromkeys(CALLS, 401)
    assert {r.json()["error"]["code"] for r in answers.values()} == {"unauthorized"}
    # Nothing was done on the way: the secret is still unlocked and active.
    secret = secured.get(
        "/internal/v1/secrets/harbor-ci", headers={INTERNAL_TOKEN_HEADER: TOKEN}
    ).json()
    assert (secret["lock_holder"], secret["status"]) == (None, "active")


def test_right_token_gets_the_normal_answer_everywhere(secured: TestClient) -> None:
    headers = {INTERNAL_TOKEN_HEADER: TOKEN}
    statuses = {
        key: secured.request(key[0], path, json=body, headers=headers).status_code
        for key, (path, body, _) in CALLS.items()
    }
    assert statuses == {key: expected for key, (_, _, expected) in CALLS.items()}


def test_without_a_configured_token_no_header_is_needed(database_url: str) -> None:
    with _client(database_url, None) as client:
        client.post("/api/v1/applications", json={"name": "payments", "team": "pay"})
        client.post(
            "/api/v1/secrets",
            json={"id": "harbor-ci", "provider": "harbor-robot", "provider_ref": "ci"},
        )
        statuses = {
            key: client.request(key[0], path, json=body).status_code
            for key, (path, body, _) in CALLS.items()
        }
    assert statuses == {key: expected for key, (_, _, expected) in CALLS.items()}


def test_public_api_needs_no_token(secured: TestClient) -> None:
    assert secured.get("/api/v1/applications").status_code == 200
    assert secured.get("/health").status_code == 200
    assert secured.get("/metrics").status_code == 200
