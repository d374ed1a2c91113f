"""``appenv_*`` events reach the control plane with success or error, once per outcome of
a flow run's step, and a control plane that is down never fails the side effect."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient

from sandbox.run import Sandbox
from services.platform.execution_workers.app import create_app
from tests.services.platform.execution_workers.support import (
    closed_port_url,
    environment_events,
    registry_of,
    sample,
    unique,
    workers_settings,
)


def _names(events: list[dict[str, object]]) -> list[tuple[object, object]]:
    return [(e["name"], e["result"]) for e in events]


def test_each_appenv_handler_reports_its_event(
    client: TestClient, sandbox: Sandbox, control_plane_url: str
) -> None:
    env = unique("env")
    repo = f"appenv-{env}"
    client.post("/github/repos", json={"name": repo})
    client.post("/appenv/branch-protection", json={"repository": repo})
    client.post(
        "/appenv/secrets", json={"environment_id": env, "application_id": "a", "secrets": ["db"]}
    )
    binding = {"secret_id": "db", "environment_id": env, "target": f"k8s:{env}/db"}
    client.post("/appenv/secret-bindings", json={"bindings": [binding]})
    client.post("/appenv/gitops-verify", json={"environment_id": env, "repository": repo})

    events = environment_events(control_plane_url, env)
    assert _names(events) == [
        ("appenv_repository", "success"),
        ("appenv_branch_protection", "success"),
        ("appenv_secrets", "success"),
        ("appenv_secret_bindings", "success"),
        ("appenv_gitops_verify", "success"),
    ]
    assert events[0]["payload"] == {"repository": f"{sandbox.github.org}/{repo}", "created": True}
    assert events[1]["payload"]["required_approving_review_count"] == 1
    assert events[3]["payload"] == {"bindings": 1, "secret_ids": ["db"]}
    assert events[4]["payload"]["reconciled"] is True


def test_a_failed_side_effect_reports_an_error_event(
    client: TestClient, sandbox: Sandbox, control_plane_url: str
) -> None:
    env = unique("env")
    sandbox.endpoints.server.faults.add(statuses=[503], path="/appenv/gitops-verify", times=1)
    body = {"environment_id": env, "repository": f"appenv-{env}"}
    assert client.post("/appenv/gitops-verify", json=body).status_code == 503

    [event] = environment_events(control_plane_url, env)
    assert (event["name"], event["result"]) == ("appenv_gitops_verify", "error")
    assert event["payload"] == {"code": "upstream_unavailable", "upstream_status": 503}


def test_bindings_across_environments_report_one_event_each(
    client: TestClient, control_plane_url: str
) -> None:
    envs = [unique("env"), unique("env")]
    bindings = [{"secret_id": "db", "environment_id": e, "target": f"k8s:{e}/db"} for e in envs]
    client.post("/appenv/secret-bindings", json={"bindings": bindings})
    for env in envs:
        assert _names(environment_events(control_plane_url, env)) == [
            ("appenv_secret_bindings", "success")
        ]


def test_a_retried_step_of_one_flow_run_reports_each_outcome_once(
    client: TestClient, sandbox: Sandbox, control_plane_url: str
) -> None:
    env, run = unique("env"), str(uuid.uuid4())
    body = {"environment_id": env, "repository": f"appenv-{env}"}
    headers = {"X-Flow-Run-Id": run}
    sandbox.endpoints.server.faults.add(statuses=[503], path="/appenv/gitops-verify", times=1)
    statuses = [
        client.post("/appenv/gitops-verify", json=body, headers=headers).status_code
        for _ in range(3)
    ]

    assert statuses == [503, 200, 200]
    events = environment_events(control_plane_url, env)
    assert _names(events) == [
        ("appenv_gitops_verify", "error"),
        ("appenv_gitops_verify", "success"),
    ]
    assert {e["flow_run_id"] for e in events} == {run}


def test_the_side_effect_succeeds_when_the_control_plane_is_down(sandbox: Sandbox) -> None:
    settings = workers_settings(sandbox, closed_port_url())
    env = unique("env")
    body = {"environment_id": env, "application_id": "a", "secrets": ["db"]}
    with TestClient(create_app(settings)) as client:
        response = client.post("/appenv/secrets", json=body)
        registry = registry_of(client)

    assert response.status_code == 200
    assert any(s["environment_id"] == env for s in sandbox.endpoints.state()["secrets"])
    failed = {"event": "appenv_secrets", "result": "success", "outcome": "failed"}
    assert sample(registry, "domain_event_reports_total", failed) == 1
    down = {"target": "control-plane", "code": "upstream_unavailable", "status": "none"}
    assert sample(registry, "downstream_errors_total", down) == 1


def test_repositories_outside_an_environment_report_nothing(
    client: TestClient, control_plane_url: str
) -> None:
    name = unique("payments")
    assert client.post("/github/repos", json={"name": name}).status_code == 200
    registry = registry_of(client)
    reported = {"event": "appenv_repository", "result": "success", "outcome": "reported"}
    assert sample(registry, "domain_event_reports_total", reported) == 0
