"""Put the domain in a given state through the API, and read error bodies."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.platform.control_plane.app import create_app
from services.platform.control_plane.launcher import WorkflowLauncher
from services.platform.control_plane.settings import ControlPlaneSettings

# Request validation happens before any database work: one backend is enough for it.
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def make_client(settings: ControlPlaneSettings, launcher: WorkflowLauncher) -> TestClient:
    """A client on a new app over the same database (use it as a context manager)."""
    return TestClient(create_app(settings, launcher=launcher), raise_server_exceptions=False)


def register_application(client: TestClient, name: str = "payments", **extra: Any) -> Any:
    response = client.post("/api/v1/applications", json={"name": name, "team": "pay", **extra})
    assert response.status_code == 201, response.text
    return response.json()


def onboard_application(client: TestClient, name: str = "payments") -> Any:
    register_application(client, name)
    for status in ("onboarding", "onboarded"):
        response = client.post(
            f"/internal/v1/applications/{name}/transitions", json={"status": status}
        )
        assert response.status_code == 200, response.text
    return response.json()


def request_environment(
    client: TestClient, application: str = "payments", name: str = "dev"
) -> Any:
    response = client.post(f"/api/v1/applications/{application}/environments", json={"name": name})
    assert response.status_code == 201, response.text
    return response.json()


def register_secret(
    client: TestClient,
    secret_id: str = "harbor-ci",
    *,
    bindings: list[dict[str, str]] | None = None,
    **extra: Any,
) -> Any:
    body = {
        "id": secret_id,
        "provider": "harbor-robot",
        "provider_ref": "ci",
        "rotation_interval_seconds": 3600,
        "bindings": bindings or [],
        **extra,
    }
    response = client.post("/api/v1/secrets", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def error_code(response: Any) -> str:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    code: str = body["error"]["code"]
    return code
