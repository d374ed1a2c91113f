"""Domain events and workflow-run outcomes recorded by workflows, and the metrics they
move on /metrics."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.services.platform.control_plane.helpers import (
    SQLITE_ONLY,
    error_code,
    register_application,
)

EVENT = {
    "name": "workflow_application_onboarding_completed",
    "aggregate": "application",
    "aggregate_id": "payments",
    "result": "success",
    "payload": {"repository": "appenv-payments-dev"},
    "flow_run_id": "run-1",
}


def sample(client: TestClient, name: str, labels: Mapping[str, object]) -> float:
    """The value of one sample on /metrics (0 when absent), parsed as Prometheus would."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == str(v) for k, v in labels.items()):
                return float(s.value)
    return 0.0


def test_an_event_is_recorded_once_by_id_and_counted_once(client: TestClient) -> None:
    event_id = str(uuid.uuid4())
    labels = {"event": EVENT["name"], "result": "success"}
    first = client.post("/internal/v1/events", json={"id": event_id, **EVENT})
    second = client.post("/internal/v1/events", json={"id": event_id, **EVENT, "payload": {}})

    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json() == first.json()
    assert first.json()["payload"] == EVENT["payload"]
    assert client.get("/api/v1/events", params={"name": EVENT["name"]}).json()["count"] == 1
    assert sample(client, "domain_events_total", labels) == 1


def test_commands_count_their_events(client: TestClient) -> None:
    before = sample(client, "domain_events_total", {"event": "application_created"})
    register_application(client, "payments")
    register_application(client, "billing")
    after = sample(client, "domain_events_total", {"event": "application_created"})
    assert after - before == 2


def test_events_filter_by_aggregate_id_and_name_newest_first(client: TestClient) -> None:
    base = datetime(2026, 11, 21, tzinfo=UTC)
    for minute, (name, aggregate_id) in enumerate(
        [
            ("workflow_appenv_provisioning_failed", "payments-dev"),
            ("workflow_appenv_provisioning_completed", "payments-dev"),
            ("workflow_appenv_provisioning_completed", "billing-dev"),
            ("appenv_repository", "payments-dev"),
        ]
    ):
        body = {
            "name": name,
            "aggregate": "environment",
            "aggregate_id": aggregate_id,
            "result": "error" if name.endswith("failed") else "success",
            "occurred_at": (base + timedelta(minutes=minute)).isoformat(),
        }
        assert client.post("/internal/v1/events", json=body).status_code == 201

    def names(**params: str) -> list[tuple[str, str]]:
        data = client.get("/api/v1/events", params=params).json()["data"]
        return [(e["name"], e["aggregate_id"]) for e in data]

    assert names(aggregate="environment", aggregate_id="payments-dev") == [
        ("appenv_repository", "payments-dev"),
        ("workflow_appenv_provisioning_completed", "payments-dev"),
        ("workflow_appenv_provisioning_failed", "payments-dev"),
    ]
    assert names(name="workflow_appenv_provisioning_completed") == [
        ("workflow_appenv_provisioning_completed", "billing-dev"),
        ("workflow_appenv_provisioning_completed", "payments-dev"),
    ]
    assert names(aggregate="environment", limit="1", offset="1") == [
        ("workflow_appenv_provisioning_completed", "billing-dev"),
    ]
    assert names(aggregate="secret") == []
    assert client.get("/api/v1/events", params={"aggregate": "planet"}).status_code == 422


@pytest.mark.parametrize(
    "change, field",
    [
        ({"name": "Bad Name"}, "name"),
        ({"aggregate": "planet"}, "aggregate"),
        ({"result": "maybe"}, "result"),
        ({"id": "not-a-uuid"}, "id"),
        ({"payload": {"robot": {"secret_value": "x"}}}, "payload"),
        ({"payload": {"password": "x"}}, "payload"),
    ],
)
@SQLITE_ONLY
def test_bad_events_are_422_and_not_recorded(
    client: TestClient, change: dict[str, object], field: str
) -> None:
    response = client.post("/internal/v1/events", json={**EVENT, **change})
    assert response.status_code == 422
    assert [f["field"] for f in response.json()["error"]["details"]["fields"]] == [field]
    assert 'secret_value": "x' not in response.text
    assert client.get("/api/v1/events").json()["count"] == 0


RUN = {
    "workflow": "ApplicationEnvironmentProvisioning",
    "flow_run_id": "run-9",
    "result": "success",
    "duration_seconds": 42.5,
    "retries": 3,
}


def test_a_run_outcome_is_reported_once_and_moves_the_workflow_metrics(client: TestClient) -> None:
    labels = {"workflow": RUN["workflow"], "result": "success"}
    first = client.post("/internal/v1/workflow-runs", json=RUN)
    again = client.post("/internal/v1/workflow-runs", json={**RUN, "duration_seconds": 1})

    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json() == first.json()
    assert sample(client, "workflow_run_duration_seconds_count", labels) == 1
    assert sample(client, "workflow_run_duration_seconds_sum", labels) == 42.5
    assert sample(client, "workflow_run_duration_seconds_bucket", {**labels, "le": "60.0"}) == 1
    assert sample(client, "workflow_run_duration_seconds_bucket", {**labels, "le": "30.0"}) == 0
    assert sample(client, "workflow_retries_total", {"workflow": RUN["workflow"]}) == 3


@pytest.mark.parametrize(
    "change, field",
    [
        ({"workflow": "MakeCoffee"}, "workflow"),
        ({"result": "ok"}, "result"),
        ({"duration_seconds": -1}, "duration_seconds"),
        ({"retries": -1}, "retries"),
    ],
)
@SQLITE_ONLY
def test_bad_run_reports_are_422(client: TestClient, change: dict[str, object], field: str) -> None:
    response = client.post("/internal/v1/workflow-runs", json={**RUN, **change})
    assert response.status_code == 422
    assert error_code(response) == "invalid_input"
    assert [f["field"] for f in response.json()["error"]["details"]["fields"]] == [field]
    assert sample(client, "workflow_run_duration_seconds_count", {}) == 0


def test_http_requests_are_counted_by_template(client: TestClient) -> None:
    client.get("/api/v1/applications/one")
    client.get("/api/v1/applications/two")
    labels = {
        "service": "control-plane-api",
        "route": "/api/v1/applications/{application_id}",
        "method": "GET",
        "status": "404",
    }
    assert sample(client, "http_requests_total", labels) == 2


def test_health_and_ready(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json() == {"status": "ready"}
    assert client.get("/docs").status_code == 200
    assert "/api/v1/applications" in client.get("/openapi.json").json()["paths"]
