"""The undo endpoints (``/github/repos/delete``, ``/appenv/secrets/delete``,
``/appenv/secret-bindings/delete``) against the sandbox over real HTTP: the side effect is
removed once and "already gone" is success, provider errors leave as stable codes, and
each reports its ensure's ``appenv_*`` event with ``"operation": "delete"``."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sandbox.run import Sandbox
from sandbox.server import SandboxServer
from services.platform.execution_workers.app import create_app
from tests.services.platform.execution_workers.support import (
    environment_events,
    error_code,
    registry_of,
    sample,
    unique,
    workers_settings,
)


@pytest.fixture
def no_delete_scope(sandbox: Sandbox) -> Iterator[None]:
    sandbox.github.store.delete_repo_scope = False
    yield
    sandbox.github.store.delete_repo_scope = True


def _post(client: TestClient, path: str, body: dict[str, Any]) -> Any:
    response = client.post(path, json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_repository_is_deleted_once_and_then_already_gone(
    client: TestClient, sandbox: Sandbox
) -> None:
    name = unique("appenv-env")
    _post(client, "/github/repos", {"name": name})
    first = _post(client, "/github/repos/delete", {"name": name})
    second = _post(client, "/github/repos/delete", {"name": name})

    assert (first, second) == (
        {"repository": name, "deleted": True},
        {"repository": name, "deleted": False},
    )
    assert f"{sandbox.github.org}/{name}" not in sandbox.github.state()["repos"]


def test_secrets_are_deleted_once_and_only_those_that_existed_are_named(
    client: TestClient, sandbox: Sandbox
) -> None:
    env = unique("env")
    _post(
        client,
        "/appenv/secrets",
        {"environment_id": env, "application_id": "a", "secrets": ["db", "api"]},
    )
    body = {"environment_id": env, "secrets": ["db", "never"]}
    first = _post(client, "/appenv/secrets/delete", body)
    second = _post(client, "/appenv/secrets/delete", body)

    assert first == {"environment_id": env, "deleted": ["db"]}
    assert second == {"environment_id": env, "deleted": []}
    left = [s["name"] for s in sandbox.endpoints.state()["secrets"] if s["environment_id"] == env]
    assert left == ["api"]


def test_bindings_are_removed_once_and_answered_with_their_version(
    client: TestClient, sandbox: Sandbox
) -> None:
    env = unique("env")
    bound = {"secret_id": "db", "environment_id": env, "target": f"k8s:{env}/db", "version": 2}
    kept = {"secret_id": "api", "environment_id": env, "target": f"k8s:{env}/api"}
    _post(client, "/appenv/secret-bindings", {"bindings": [bound, kept]})
    key = {k: bound[k] for k in ("secret_id", "environment_id", "target")}
    first = _post(client, "/appenv/secret-bindings/delete", {"bindings": [key]})
    second = _post(client, "/appenv/secret-bindings/delete", {"bindings": [key]})

    assert (first, second) == ({"bindings": [bound]}, {"bindings": []})
    left = [
        b["secret_id"] for b in sandbox.endpoints.state()["bindings"] if b["environment_id"] == env
    ]
    assert left == ["api"]


def test_vault_backend_deletes_every_version_in_vault(
    sandbox: Sandbox, control_plane_url: str
) -> None:
    env = unique("env")
    with TestClient(create_app(workers_settings(sandbox, control_plane_url, vault=True))) as vault:
        _post(
            vault,
            "/appenv/secrets",
            {"environment_id": env, "application_id": "a", "secrets": ["db"]},
        )
        first = _post(vault, "/appenv/secrets/delete", {"environment_id": env, "secrets": ["db"]})
        second = _post(vault, "/appenv/secrets/delete", {"environment_id": env, "secrets": ["db"]})

    assert (first["deleted"], second["deleted"]) == (["db"], [])
    assert not [k for k in sandbox.vault.state()["mounts"]["secret"] if k.endswith(f"{env}/db")]


@pytest.mark.usefixtures("no_delete_scope")
def test_a_token_that_may_not_delete_is_forbidden_and_counted(
    client: TestClient, sandbox: Sandbox
) -> None:
    name = unique("repo")
    _post(client, "/github/repos", {"name": name})
    response = client.post("/github/repos/delete", json={"name": name})

    assert (response.status_code, error_code(response)) == (403, "forbidden")
    assert response.json()["error"]["details"]["status"] == 403
    labels = {"target": "github", "code": "forbidden", "status": "403"}
    assert sample(registry_of(client), "downstream_errors_total", labels) == 1
    assert f"{sandbox.github.org}/{name}" in sandbox.github.state()["repos"]


@dataclass(frozen=True)
class Undo:
    path: str
    body: Callable[[], dict[str, Any]]
    fault_path: str
    server: Callable[[Sandbox], SandboxServer]
    target: str


UNDOS = {
    "repository": Undo(
        "/github/repos/delete",
        lambda: {"name": unique("repo")},
        "/repos/",
        lambda s: s.github.server,
        "github",
    ),
    "secrets": Undo(
        "/appenv/secrets/delete",
        lambda: {"environment_id": unique("env"), "secrets": ["db"]},
        "/appenv/secrets/delete",
        lambda s: s.endpoints.server,
        "secret-endpoints",
    ),
    "bindings": Undo(
        "/appenv/secret-bindings/delete",
        lambda: {"bindings": [{"secret_id": "db", "environment_id": unique("env"), "target": "t"}]},
        "/appenv/secret-bindings/delete",
        lambda s: s.endpoints.server,
        "secret-endpoints",
    ),
}


@pytest.mark.parametrize("undo", UNDOS.values(), ids=list(UNDOS))
@pytest.mark.parametrize(
    ("upstream", "code", "status"),
    [(401, "unauthorized", 401), (429, "rate_limited", 429), (503, "upstream_unavailable", 503)],
)
def test_provider_errors_of_an_undo_become_stable_codes(
    client: TestClient, sandbox: Sandbox, undo: Undo, upstream: int, code: str, status: int
) -> None:
    undo.server(sandbox).faults.add(statuses=[upstream], path=undo.fault_path, times=1)
    response = client.post(undo.path, json=undo.body())

    assert (response.status_code, error_code(response)) == (status, code)
    labels = {"target": undo.target, "code": code, "status": str(upstream)}
    assert sample(registry_of(client), "downstream_errors_total", labels) == 1


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/github/repos/delete", {"name": ".."}),
        ("/github/repos/delete", {"name": "r", "private": True}),  # unknown field
        ("/appenv/secrets/delete", {"environment_id": "env-1", "secrets": ["../x"]}),
        ("/appenv/secrets/delete", {"environment_id": "env-1", "secrets": ["s"] * 101}),
        ("/appenv/secret-bindings/delete", {"bindings": []}),
        (
            "/appenv/secret-bindings/delete",
            {
                "bindings": [
                    {"secret_id": "s", "environment_id": "env-1", "target": "t", "version": 1}
                ]
            },
        ),
    ],
)
def test_undo_bodies_are_validated_like_the_ensures(
    client: TestClient, path: str, body: dict[str, Any]
) -> None:
    response = client.post(path, json=body)
    assert (response.status_code, error_code(response)) == (422, "invalid_input")


def test_undos_report_their_ensures_event_with_operation_delete_in_the_same_run(
    client: TestClient, sandbox: Sandbox, control_plane_url: str
) -> None:
    """Same flow run, same event name and result: the undo's event must not be taken for
    a retry of the ensure's (the event id includes the operation)."""
    env, headers = unique("env"), {"X-Flow-Run-Id": str(uuid.uuid4())}
    repo = f"appenv-{env}"
    binding = {"secret_id": "db", "environment_id": env, "target": f"k8s:{env}/db"}
    secrets = {"environment_id": env, "application_id": "a", "secrets": ["db"]}
    steps = [
        ("/github/repos", {"name": repo}),
        ("/appenv/secrets", secrets),
        ("/appenv/secret-bindings", {"bindings": [binding]}),
        ("/appenv/secret-bindings/delete", {"bindings": [binding]}),
        ("/appenv/secrets/delete", {"environment_id": env, "secrets": ["db"]}),
        ("/github/repos/delete", {"name": repo}),
        ("/github/repos/delete", {"name": repo}),  # a retried undo: reported once
    ]
    for path, body in steps:
        assert client.post(path, json=body, headers=headers).status_code == 200

    events = [
        (e["name"], e["result"], e["payload"]) for e in environment_events(control_plane_url, env)
    ]
    org = sandbox.github.org
    assert events == [
        ("appenv_repository", "success", {"repository": f"{org}/{repo}", "created": True}),
        ("appenv_secrets", "success", {"application_id": "a", "secrets": 1}),
        ("appenv_secret_bindings", "success", {"bindings": 1, "secret_ids": ["db"]}),
        (
            "appenv_secret_bindings",
            "success",
            {"operation": "delete", "bindings": 1, "secret_ids": ["db"]},
        ),
        ("appenv_secrets", "success", {"operation": "delete", "secrets": 1}),
        (
            "appenv_repository",
            "success",
            {"operation": "delete", "repository": repo, "deleted": True},
        ),
    ]


def test_a_failed_undo_reports_an_error_event_that_says_delete(
    client: TestClient, sandbox: Sandbox, control_plane_url: str
) -> None:
    env = unique("env")
    sandbox.endpoints.server.faults.add(statuses=[503], path="/appenv/secrets/delete", times=1)
    body = {"environment_id": env, "secrets": ["db"]}
    assert client.post("/appenv/secrets/delete", json=body).status_code == 503

    [event] = environment_events(control_plane_url, env)
    assert (event["name"], event["result"]) == ("appenv_secrets", "error")
    assert event["payload"] == {
        "operation": "delete",
        "code": "upstream_unavailable",
        "upstream_status": 503,
    }


def test_undo_routes_are_counted_by_their_template(client: TestClient) -> None:
    client.post("/github/repos/delete", json={"name": unique("repo")})
    text = client.get("/metrics").text
    assert (
        'http_requests_total{method="POST",route="/github/repos/delete",'
        'service="execution-workers",status="200"} 1.0' in text
    )
