"""Each endpoint against the sandbox over real HTTP: the side effect lands, and the same
request twice leaves one side effect (the seed's idempotency rule)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from sandbox.run import Sandbox
from tests.services.platform.execution_workers.support import unique


def _repo(sandbox: Sandbox, name: str) -> dict[str, Any] | None:
    repo: dict[str, Any] | None = sandbox.github.state()["repos"].get(
        f"{sandbox.github.org}/{name}"
    )
    return repo


def _post_twice(client: TestClient, path: str, body: dict[str, Any]) -> tuple[Any, Any]:
    first = client.post(path, json=body)
    assert first.status_code == 200, first.text
    second = client.post(path, json=body)
    assert second.status_code == 200, second.text
    return first.json(), second.json()


def test_github_repos_creates_the_repository_once(client: TestClient, sandbox: Sandbox) -> None:
    name = unique("appenv-env")
    first, second = _post_twice(client, "/github/repos", {"name": name, "description": "d"})

    assert first["created"] is True and second["created"] is False
    assert first["full_name"] == second["full_name"] == f"{sandbox.github.org}/{name}"
    repo = _repo(sandbox, name)
    assert repo is not None and repo["private"] is True


def test_github_repos_refuses_to_adopt_a_repository_of_other_visibility(
    client: TestClient,
) -> None:
    name = unique("repo")
    assert client.post("/github/repos", json={"name": name}).status_code == 200
    response = client.post("/github/repos", json={"name": name, "private": False})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "resource_mismatch"


def test_files_are_created_once_and_existing_ones_kept(client: TestClient) -> None:
    name = unique("repo")
    client.post("/github/repos", json={"name": name})
    body = {
        "repository": name,
        "files": {"catalog-info.yaml": "kind: Component\n", "docs/intro.md": "# hi\n"},
        "message": "seed",
    }
    first, second = _post_twice(client, "/github/repos/files", body)
    assert sorted(first["created"]) == ["catalog-info.yaml", "docs/intro.md"]
    assert second["created"] == []


def test_branch_protection_requires_one_review_and_is_written_once(
    client: TestClient, sandbox: Sandbox
) -> None:
    name = unique("appenv-env")
    client.post("/github/repos", json={"name": name})
    body = {"repository": name}
    with sandbox.github.recording() as exchanges:
        first, second = _post_twice(client, "/appenv/branch-protection", body)

    assert first["required_approving_review_count"] == 1
    assert (first["changed"], second["changed"]) == (True, False)
    writes = [e for e in exchanges if e.method == "PUT" and e.path.endswith("/protection")]
    assert len(writes) == 1


def test_branch_protection_refuses_zero_reviews(client: TestClient) -> None:
    body = {"repository": "appenv-x", "required_approving_review_count": 0}
    response = client.post("/appenv/branch-protection", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_input"


def test_secrets_are_materialized_once(client: TestClient, sandbox: Sandbox) -> None:
    env = unique("env")
    body = {"environment_id": env, "application_id": "payments", "secrets": ["db", "api"]}
    first, second = _post_twice(client, "/appenv/secrets", body)

    assert [s["path"] for s in first["secrets"]] == [f"appenv/{env}/db", f"appenv/{env}/api"]
    assert first["secrets"] == second["secrets"]
    stored = [s for s in sandbox.endpoints.state()["secrets"] if s["environment_id"] == env]
    assert [(s["name"], s["version"]) for s in stored] == [("api", 1), ("db", 1)]
    assert "value" not in str(first)


def test_secret_bindings_are_upserted_once(client: TestClient, sandbox: Sandbox) -> None:
    env = unique("env")
    bindings = [
        {"secret_id": "db", "environment_id": env, "target": f"k8s:{env}/db"},
        {"secret_id": "api", "environment_id": env, "target": f"k8s:{env}/api", "version": 2},
    ]
    first, second = _post_twice(client, "/appenv/secret-bindings", {"bindings": bindings})

    assert first == second
    assert [b["version"] for b in first["bindings"]] == [None, 2]
    mine = [b for b in sandbox.endpoints.state()["bindings"] if b["environment_id"] == env]
    assert len(mine) == 2


def test_gitops_verify_reports_reconciliation(client: TestClient, sandbox: Sandbox) -> None:
    env = unique("env")
    body = {"environment_id": env, "repository": f"appenv-{env}"}
    sandbox.endpoints.force_gitops(env, False, "waiting for the controller")
    waiting = client.post("/appenv/gitops-verify", json=body).json()
    sandbox.endpoints.force_gitops(env, None)
    done = client.post("/appenv/gitops-verify", json=body).json()

    assert (waiting["reconciled"], waiting["message"]) == (False, "waiting for the controller")
    assert done["reconciled"] is True and done["revision"]


def test_vault_backend_keeps_values_in_vault(sandbox: Sandbox, control_plane_url: str) -> None:
    from services.platform.execution_workers.app import create_app
    from tests.services.platform.execution_workers.support import workers_settings

    app = create_app(workers_settings(sandbox, control_plane_url, vault=True))
    env = unique("env")
    body = {"environment_id": env, "application_id": "payments", "secrets": ["db"]}
    with TestClient(app) as client:
        assert client.get("/ready").json()["providers"]["secrets"] == "vault"
        first, second = _post_twice(client, "/appenv/secrets", body)

    assert first["secrets"][0]["backend"] == "vault"
    assert first["secrets"][0]["path"].endswith(f"appenv/{env}/db")
    assert first == second
