"""Every provider failure leaves as a stable code and HTTP status (services/http.py's one
handler), never a raw 500: a fault table over the three providers, plus configuration
errors and the downstream error metric."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sandbox.run import HARBOR_PROJECT, Sandbox
from sandbox.server import SandboxServer
from services.platform.execution_workers.app import create_app
from tests.services.platform.execution_workers.support import (
    closed_port_url,
    error_code,
    registry_of,
    sample,
    unique,
    workers_settings,
)


@dataclass(frozen=True)
class Target:
    """One provider, the endpoint that reaches it, and where to inject its faults."""

    name: str
    path: str
    body: Callable[[], dict[str, Any]]
    fault_path: str
    server: Callable[[Sandbox], SandboxServer]
    refused: Callable[[str], dict[str, Any]]  # settings overrides pointing at a dead port


TARGETS = {
    "github": Target(
        "github",
        "/github/repos",
        lambda: {"name": unique("repo")},
        "/orgs/",
        lambda s: s.github.server,
        lambda url: {"GITHUB_API_URL": url},
    ),
    "secret-endpoints": Target(
        "secret-endpoints",
        "/appenv/secrets",
        lambda: {"environment_id": unique("env"), "application_id": "app", "secrets": ["db"]},
        "/appenv/secrets",
        lambda s: s.endpoints.server,
        lambda url: {"APPENV_SECRETS_ENDPOINT": f"{url}/appenv/secrets"},
    ),
    "harbor": Target(
        "harbor",
        "/secrets/bindings/update",
        lambda: {
            "secret_id": unique("harbor"),
            "source": {
                "kind": "harbor-rotation",
                "robot": "ci",
                "project": HARBOR_PROJECT,
                "rotation_id": unique("run"),
            },
        },
        "/api/v2.0/",
        lambda s: s.harbor.server,
        lambda url: {"HARBOR_URL": url},
    ),
}

# Upstream status -> (code, HTTP status execution-workers answers).
STATUS_TABLE = [
    (401, "unauthorized", 401),
    (403, "forbidden", 403),
    (404, "not_found", 404),
    (409, "conflict", 409),
    (422, "invalid_input", 422),
    (429, "rate_limited", 429),
    (500, "upstream_unavailable", 503),
    (502, "upstream_unavailable", 503),
    (503, "upstream_unavailable", 503),
]


@pytest.mark.parametrize("target", TARGETS.values(), ids=list(TARGETS))
@pytest.mark.parametrize(("upstream", "code", "status"), STATUS_TABLE)
def test_upstream_status_becomes_a_stable_code(
    client: TestClient, sandbox: Sandbox, target: Target, upstream: int, code: str, status: int
) -> None:
    target.server(sandbox).faults.add(
        statuses=[upstream], path=target.fault_path, retry_after=7, times=1
    )
    response = client.post(target.path, json=target.body())

    assert (response.status_code, error_code(response)) == (status, code)
    if code == "rate_limited":
        assert int(response.headers["retry-after"]) >= 1
    registry = registry_of(client)
    labels = {"target": target.name, "code": code, "status": str(upstream)}
    assert sample(registry, "downstream_errors_total", labels) == 1


@pytest.mark.parametrize("target", TARGETS.values(), ids=list(TARGETS))
def test_a_provider_that_does_not_answer_in_time_is_upstream_timeout(
    sandbox: Sandbox, target: Target
) -> None:
    # PyGithub rounds timeouts up to whole seconds: GitHub's fault must outlast 1 s.
    latency = 1500 if target.name == "github" else 600
    target.server(sandbox).faults.add(path=target.fault_path, latency_ms=latency, times=1)
    settings = workers_settings(sandbox, PROVIDER_TIMEOUT_SECONDS=0.2)
    with TestClient(create_app(settings)) as client:
        response = client.post(target.path, json=target.body())
    assert (response.status_code, error_code(response)) == (504, "upstream_timeout")


@pytest.mark.parametrize("target", TARGETS.values(), ids=list(TARGETS))
def test_a_refused_connection_is_upstream_unavailable(sandbox: Sandbox, target: Target) -> None:
    settings = workers_settings(sandbox, **target.refused(closed_port_url()))
    with TestClient(create_app(settings)) as client:
        response = client.post(target.path, json=target.body())
        registry = registry_of(client)
    assert (response.status_code, error_code(response)) == (503, "upstream_unavailable")
    labels = {"target": target.name, "code": "upstream_unavailable", "status": "none"}
    assert sample(registry, "downstream_errors_total", labels) == 1


@pytest.mark.parametrize(
    ("path", "body", "unset", "provider"),
    [
        ("/github/repos", {"name": "r"}, {"GITHUB_TOKEN": None, "GITHUB_ORG": None}, "git"),
        (
            "/appenv/gitops-verify",
            {"environment_id": "env-1", "repository": "appenv-env-1"},
            {
                "APPENV_SECRETS_ENDPOINT": None,
                "APPENV_SECRET_BINDINGS_ENDPOINT": None,
                "APPENV_GITOPS_VERIFY_ENDPOINT": None,
                "SECRET_BINDINGS_UPDATE_ENDPOINT": None,
            },
            "bindings",
        ),
    ],
)
def test_an_unconfigured_provider_is_a_precondition_not_a_crash(
    sandbox: Sandbox, path: str, body: dict[str, Any], unset: dict[str, Any], provider: str
) -> None:
    with TestClient(create_app(workers_settings(sandbox, **unset))) as client:
        response = client.post(path, json=body)
        ready = client.get("/ready")
    assert (response.status_code, error_code(response)) == (412, "precondition_failed")
    assert response.json()["error"]["details"] == {"provider": provider}
    assert ready.status_code == 200
    assert ready.json()["providers"][provider] == "not configured"


def test_a_half_configured_provider_makes_the_service_not_ready(sandbox: Sandbox) -> None:
    settings = workers_settings(sandbox, GITHUB_ORG=None)  # token set, organization not
    with TestClient(create_app(settings)) as client:
        ready = client.get("/ready")
        response = client.post("/github/repos", json={"name": "r"})
    assert (ready.status_code, error_code(ready)) == (412, "precondition_failed")
    assert ready.json()["error"]["details"]["providers"]["git"] == "misconfigured"
    assert "GITHUB_ORG" in response.json()["error"]["message"]


def test_nothing_configured_is_not_ready() -> None:
    from services.platform.execution_workers.settings import ExecutionWorkersSettings

    with TestClient(create_app(ExecutionWorkersSettings(CONTROL_PLANE_URL=""))) as client:
        assert client.get("/health").json() == {"status": "ok"}
        assert client.get("/ready").status_code == 412
