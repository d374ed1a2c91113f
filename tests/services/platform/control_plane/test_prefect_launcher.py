"""WorkflowLauncher against a real Prefect API (the session's ``prefect_harness``): runs are
created from the ``<Workflow>/idp`` deployment with the request as parameter, without
waiting, deduplicated by idempotency key; an engine that is down or missing a deployment
answers 503 workflow_engine_unavailable and the command writes nothing."""

from __future__ import annotations

import asyncio
import secrets
import socket
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prefect import flow

from blocks.platform.domain import WORKFLOW_APPLICATION_ONBOARDING
from blocks.platform.workflows import DEPLOYMENT_NAME, ApplicationOnboardingRequest
from services.platform.control_plane.app import create_app
from services.platform.control_plane.launcher import WorkflowLauncher
from services.platform.control_plane.settings import ControlPlaneSettings
from tests.services.platform.control_plane.helpers import error_code


@flow(name=WORKFLOW_APPLICATION_ONBOARDING)
def application_onboarding(request: ApplicationOnboardingRequest) -> None:
    """Stands in for the real flow: only its name and parameter schema matter here."""


@pytest.fixture(scope="module")
def prefect_api(prefect_harness: None) -> str:
    from prefect.settings import PREFECT_API_URL

    deployment: Any = application_onboarding.to_deployment(name=DEPLOYMENT_NAME)
    deployment.apply()
    url: str = PREFECT_API_URL.value()
    return url


def _read_run(run_id: str) -> Any:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(uuid.UUID(run_id))


def _client(tmp_path: Path, launcher: WorkflowLauncher) -> TestClient:
    settings = ControlPlaneSettings(DATABASE_URL=f"sqlite:///{tmp_path / 'cp.db'}")
    return TestClient(create_app(settings, launcher=launcher), raise_server_exceptions=False)


def test_register_creates_a_scheduled_run_with_the_request(
    prefect_api: str, tmp_path: Path
) -> None:
    name = f"app-{secrets.token_hex(4)}"
    with _client(tmp_path, WorkflowLauncher(api_url=prefect_api)) as client:
        response = client.post("/api/v1/applications", json={"name": name, "team": "pay"})
    assert response.status_code == 201, response.text
    body = response.json()

    run = _read_run(body["last_flow_run_id"])
    assert run.parameters == {"request": {"application_id": name}}
    assert run.state.type.value == "SCHEDULED"  # created, not waited for
    ui = prefect_api.removesuffix("/api")
    assert body["last_flow_run_url"] == f"{ui}/runs/flow-run/{run.id}"


def test_prefect_dedupes_by_idempotency_key(prefect_api: str, tmp_path: Path) -> None:
    launcher = WorkflowLauncher(api_url=prefect_api)
    request = ApplicationOnboardingRequest(application_id="dedupe")
    key = f"test:{secrets.token_hex(4)}"

    async def launch(idempotency_key: str) -> str:
        run = await launcher.launch(
            WORKFLOW_APPLICATION_ONBOARDING, request, idempotency_key=idempotency_key
        )
        return run.flow_run_id

    first, again, other = (asyncio.run(launch(k)) for k in (key, key, key + "-other"))
    assert first == again
    assert other != first


def test_a_command_retried_after_a_lost_commit_gets_the_same_run(
    prefect_api: str, tmp_path: Path
) -> None:
    # The run was created but the database never kept the command (crash before
    # commit): retried with the same Idempotency-Key, the command adopts that run.
    name = f"app-{secrets.token_hex(4)}"
    body = {"name": name, "team": "pay"}
    headers = {"Idempotency-Key": f"key-{name}"}
    launcher = WorkflowLauncher(api_url=prefect_api)
    with _client(tmp_path / "first", launcher) as client:
        first = client.post("/api/v1/applications", json=body, headers=headers).json()
    with _client(tmp_path / "lost-commit", launcher) as client:
        retried = client.post("/api/v1/applications", json=body, headers=headers).json()
    assert retried["last_flow_run_id"] == first["last_flow_run_id"]


def test_missing_deployment_is_503_and_releases_the_secret(
    prefect_api: str, tmp_path: Path
) -> None:
    # Only ApplicationOnboarding is deployed in this harness, not SecretRotation.
    with _client(tmp_path, WorkflowLauncher(api_url=prefect_api)) as client:
        client.post(
            "/api/v1/secrets",
            json={"id": "harbor-ci", "provider": "harbor-robot", "provider_ref": "ci"},
        )
        response = client.post("/api/v1/secrets/harbor-ci/rotations")
        assert response.status_code == 503
        assert error_code(response) == "workflow_engine_unavailable"
        assert response.json()["error"]["details"] == {"deployment": "SecretRotation/idp"}
        assert client.get("/api/v1/secrets/harbor-ci").json()["lock_holder"] is None


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_unreachable_prefect_is_503_with_nothing_written(tmp_path: Path) -> None:
    launcher = WorkflowLauncher(api_url=f"http://127.0.0.1:{_closed_port()}/api", timeout_seconds=2)
    with _client(tmp_path, launcher) as client:
        response = client.post("/api/v1/applications", json={"name": "payments", "team": "pay"})
        assert response.status_code == 503
        assert error_code(response) == "workflow_engine_unavailable"
        assert client.get("/api/v1/applications").json()["count"] == 0
        assert client.get("/api/v1/events").json()["count"] == 0


@pytest.mark.parametrize(
    "api_url, ui_url, link",
    [
        ("http://prefect:4200/api", None, "http://prefect:4200/runs/flow-run/r1"),
        ("http://prefect:4200/api/", None, "http://prefect:4200/runs/flow-run/r1"),
        ("http://prefect:4200/api", "https://ui.example/", "https://ui.example/runs/flow-run/r1"),
    ],
)
def test_ui_link_comes_from_ui_url_or_the_api_url(
    api_url: str, ui_url: str | None, link: str
) -> None:
    launcher = WorkflowLauncher(api_url=api_url, ui_url=ui_url)
    assert launcher.flow_run_url("r1") == link
    assert launcher.flow_run_url(None) is None
