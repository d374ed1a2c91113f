"""Registering applications: the command, its launch, its event, and what a user reads."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from core.errors import WorkflowEngineUnavailable
from services.platform.control_plane.settings import ControlPlaneSettings
from tests.services.platform.control_plane.helpers import (
    SQLITE_ONLY,
    error_code,
    make_client,
    register_application,
)
from tests.services.platform.control_plane.launchers import RecordingLauncher


def test_register_starts_onboarding_with_the_application_as_parameter(
    client: TestClient, launcher: RecordingLauncher
) -> None:
    body = register_application(client, "payments", description="card payments")

    assert body["id"] == body["name"] == "payments"
    assert body["status"] == "registered"
    [launch] = launcher.launches
    assert launch.workflow == "ApplicationOnboarding"
    assert launch.parameters == {"request": {"application_id": "payments"}}
    assert body["last_flow_run_id"] == launch.flow_run_id
    assert body["last_flow_run_url"] == f"http://prefect.test/runs/flow-run/{launch.flow_run_id}"


def test_the_application_reads_back_with_its_run_and_event(client: TestClient) -> None:
    created = register_application(client, "payments")

    read = client.get("/api/v1/applications/payments")
    assert read.status_code == 200
    assert read.json() == created
    listed = client.get("/api/v1/applications").json()
    assert listed["count"] == 1 and listed["data"] == [created]
    events = client.get("/api/v1/events", params={"aggregate_id": "payments"}).json()["data"]
    assert [(e["name"], e["flow_run_id"]) for e in events] == [
        ("application_created", created["last_flow_run_id"])
    ]


def test_registering_a_taken_name_is_409_and_starts_nothing(
    client: TestClient, launcher: RecordingLauncher
) -> None:
    register_application(client, "payments")
    again = client.post("/api/v1/applications", json={"name": "payments", "team": "other"})
    assert again.status_code == 409
    assert error_code(again) == "conflict"
    assert len(launcher.launches) == 1


@pytest.mark.parametrize(
    "body, fields",
    [
        ({"team": "pay"}, {"name"}),
        ({"name": "Payments", "team": "pay"}, {"name"}),
        ({"name": "p", "team": "pay"}, {"name"}),
        ({"name": "payments"}, {"team"}),
        ({"name": "payments", "team": "pay", "description": "x" * 501}, {"description"}),
        ({"name": "payments_2", "team": "Pay Team"}, {"name", "team"}),
    ],
)
@SQLITE_ONLY
def test_bad_bodies_are_422_naming_the_fields_and_write_nothing(
    client: TestClient, launcher: RecordingLauncher, body: dict[str, str], fields: set[str]
) -> None:
    response = client.post("/api/v1/applications", json=body)
    assert response.status_code == 422
    assert error_code(response) == "invalid_input"
    assert {f["field"] for f in response.json()["error"]["details"]["fields"]} == fields
    assert client.get("/api/v1/applications").json()["count"] == 0
    assert launcher.launches == []


def test_unknown_application_is_404(client: TestClient) -> None:
    response = client.get("/api/v1/applications/nope")
    assert response.status_code == 404
    assert error_code(response) == "not_found"


def test_same_idempotency_key_answers_the_same_and_launches_once(
    client: TestClient, launcher: RecordingLauncher
) -> None:
    headers = {"Idempotency-Key": "onboard-payments-1"}
    body = {"name": "payments", "team": "pay"}
    first = client.post("/api/v1/applications", json=body, headers=headers)
    second = client.post("/api/v1/applications", json=body, headers=headers)

    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert len(launcher.launches) == 1
    key, period = launcher.launches[0].idempotency_key.rsplit(":", 1)
    assert key.endswith(":onboard-payments-1") and period.isdigit()
    events = client.get("/api/v1/events").json()
    assert events["count"] == 1


def test_reusing_a_key_for_another_request_is_refused(client: TestClient) -> None:
    headers = {"Idempotency-Key": "k-1"}
    client.post("/api/v1/applications", json={"name": "payments", "team": "pay"}, headers=headers)
    other = client.post(
        "/api/v1/applications", json={"name": "billing", "team": "pay"}, headers=headers
    )
    assert other.status_code == 422
    assert error_code(other) == "invalid_input"
    assert client.get("/api/v1/applications/billing").status_code == 404


def test_engine_unavailable_is_503_and_leaves_nothing_written(
    settings: ControlPlaneSettings,
) -> None:
    failing = RecordingLauncher(fail_with=WorkflowEngineUnavailable("Prefect API unreachable"))
    with make_client(settings, failing) as client:
        response = client.post(
            "/api/v1/applications",
            json={"name": "payments", "team": "pay"},
            headers={"Idempotency-Key": "k-503"},
        )
        assert response.status_code == 503
        assert error_code(response) == "workflow_engine_unavailable"
        assert client.get("/api/v1/applications").json()["count"] == 0
        assert client.get("/api/v1/events").json()["count"] == 0

    # Prefect is back: the same command (same key) now succeeds, once.
    working = RecordingLauncher()
    with make_client(settings, working) as client:
        retried = client.post(
            "/api/v1/applications",
            json={"name": "payments", "team": "pay"},
            headers={"Idempotency-Key": "k-503"},
        )
        assert retried.status_code == 201
        assert len(working.launches) == 1


def test_lists_page_with_limit_and_offset(client: TestClient) -> None:
    for name in ("app-a", "app-b", "app-c"):
        register_application(client, name)
    page = client.get("/api/v1/applications", params={"limit": 2, "offset": 1}).json()
    assert page["count"] == 3
    assert [a["id"] for a in page["data"]] == ["app-b", "app-c"]
    bad = client.get("/api/v1/applications", params={"limit": 0})
    assert bad.status_code == 422
    assert bad.json()["error"]["details"]["fields"][0]["field"] == "limit"
