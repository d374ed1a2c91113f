"""Requesting environments: only for onboarded applications; starts provisioning."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from core.errors import WorkflowEngineUnavailable
from services.platform.control_plane.settings import ControlPlaneSettings
from tests.services.platform.control_plane.helpers import (
    SQLITE_ONLY,
    error_code,
    make_client,
    onboard_application,
    register_application,
    request_environment,
)
from tests.services.platform.control_plane.launchers import RecordingLauncher


def test_request_starts_provisioning_of_appenv_repository(
    client: TestClient, launcher: RecordingLauncher
) -> None:
    onboard_application(client, "payments")
    body = request_environment(client, "payments", "dev")

    assert body["id"] == "payments-dev"
    assert body["repository"] == "appenv-payments-dev"
    assert body["status"] == "requested"
    assert body["secrets"] == ["app-config"]
    launch = launcher.launches[-1]
    assert launch.workflow == "ApplicationEnvironmentProvisioning"
    assert launch.parameters == {
        "request": {"environment_id": "payments-dev", "keep_partial": False}
    }
    assert body["last_flow_run_id"] == launch.flow_run_id
    assert client.get("/api/v1/environments/payments-dev").json() == body
    listed = client.get("/api/v1/applications/payments/environments").json()
    assert listed == {"data": [body], "count": 1}
    events = client.get("/api/v1/events", params={"aggregate": "environment"}).json()["data"]
    assert [e["name"] for e in events] == ["appenv_requested"]


def test_secrets_to_provision_can_be_chosen(client: TestClient) -> None:
    onboard_application(client, "payments")
    response = client.post(
        "/api/v1/applications/payments/environments",
        json={"name": "prod", "secrets": ["db-password", "app-config", "db-password"]},
    )
    assert response.status_code == 201
    assert response.json()["secrets"] == ["db-password", "app-config"]


@pytest.mark.parametrize("status", ["registered", "onboarding", "onboarding_failed"])
def test_application_not_onboarded_is_412_and_writes_nothing(
    client: TestClient, launcher: RecordingLauncher, status: str
) -> None:
    register_application(client, "payments")
    path = "/internal/v1/applications/payments/transitions"
    for step in {"registered": [], "onboarding": ["onboarding"]}.get(
        status, ["onboarding", "onboarding_failed"]
    ):
        assert client.post(path, json={"status": step}).status_code == 200

    response = client.post("/api/v1/applications/payments/environments", json={"name": "dev"})
    assert response.status_code == 412
    assert error_code(response) == "precondition_failed"
    assert client.get("/api/v1/environments/payments-dev").status_code == 404
    assert len(launcher.launches) == 1  # only the onboarding


def test_unknown_application_is_404(client: TestClient) -> None:
    response = client.post("/api/v1/applications/nope/environments", json={"name": "dev"})
    assert response.status_code == 404
    assert error_code(response) == "not_found"
    assert client.get("/api/v1/applications/nope/environments").status_code == 404
    assert client.get("/api/v1/environments/nope-dev").status_code == 404


def test_requesting_an_existing_environment_is_409(client: TestClient) -> None:
    onboard_application(client, "payments")
    request_environment(client, "payments", "dev")
    again = client.post("/api/v1/applications/payments/environments", json={"name": "dev"})
    assert again.status_code == 409
    assert error_code(again) == "conflict"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "Dev"}, "name"),
        ({"name": "a-very-long-environment-name"}, "name"),
        ({"name": "dev", "secrets": ["Not A Slug"]}, "secrets.0"),
        ({"name": "dev", "secrets": "app-config"}, "secrets"),
    ],
)
@SQLITE_ONLY
def test_bad_bodies_are_422_naming_the_field(
    client: TestClient, body: dict[str, object], field: str
) -> None:
    onboard_application(client, "payments")
    response = client.post("/api/v1/applications/payments/environments", json=body)
    assert response.status_code == 422
    assert [f["field"] for f in response.json()["error"]["details"]["fields"]] == [field]
    assert client.get("/api/v1/applications/payments/environments").json()["count"] == 0


def test_engine_unavailable_is_503_and_leaves_no_environment(
    client: TestClient, settings: ControlPlaneSettings
) -> None:
    onboard_application(client, "payments")
    failing = RecordingLauncher(fail_with=WorkflowEngineUnavailable("down"))
    with make_client(settings, failing) as other:
        response = other.post("/api/v1/applications/payments/environments", json={"name": "dev"})
        assert response.status_code == 503
        assert error_code(response) == "workflow_engine_unavailable"
    assert client.get("/api/v1/environments/payments-dev").status_code == 404
    names = [e["name"] for e in client.get("/api/v1/events").json()["data"]]
    assert "appenv_requested" not in names


def test_a_request_may_ask_to_keep_partial_work(
    client: TestClient, launcher: RecordingLauncher
) -> None:
    onboard_application(client, "payments")
    response = client.post(
        "/api/v1/applications/payments/environments", json={"name": "qa", "keep_partial": True}
    )
    assert response.status_code == 201, response.text
    assert launcher.launches[-1].parameters == {
        "request": {"environment_id": "payments-qa", "keep_partial": True}
    }
