"""The secret endpoints sandbox: idempotent calls, platform error bodies, internal auth."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from core.internal_auth import INTERNAL_TOKEN_HEADER
from sandbox.secret_endpoints import SecretEndpointsSandbox


@pytest.fixture(scope="module")
def endpoints() -> Iterator[SecretEndpointsSandbox]:
    with SecretEndpointsSandbox() as sandbox:
        yield sandbox


@pytest.fixture
def http(endpoints: SecretEndpointsSandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=endpoints.url) as client:
        yield client


def test_provision_is_create_only(http: httpx.Client) -> None:
    body = {"environment_id": "env-p", "application_id": "app", "secrets": ["db", "api"]}
    first = http.post("/appenv/secrets", json=body).json()
    assert [(s["name"], s["version"], s["created"]) for s in first["secrets"]] == [
        ("db", 1, True),
        ("api", 1, True),
    ]
    again = http.post("/appenv/secrets", json=body).json()
    assert [s["created"] for s in again["secrets"]] == [False, False]
    assert all("value" not in s for s in again["secrets"])


def test_stored_values_add_versions(http: httpx.Client, endpoints: SecretEndpointsSandbox) -> None:
    for expected in (1, 2):
        stored = http.post("/appenv/secrets/values", json={"secret_id": "s-v", "value": "x"})
        assert stored.json() == {"secret_id": "s-v", "path": "secrets/s-v", "version": expected}
    assert endpoints.secret_value("s-v") == "x"


def test_same_binding_request_twice_leaves_one_binding(
    http: httpx.Client, endpoints: SecretEndpointsSandbox
) -> None:
    body = {"bindings": [{"secret_id": "s-b", "environment_id": "env-b", "target": "k8s:a/b"}]}
    first = http.post("/appenv/secret-bindings", json=body).json()
    second = http.post("/appenv/secret-bindings", json=body).json()
    assert first == second
    bound = [b for b in endpoints.state()["bindings"] if b["secret_id"] == "s-b"]
    assert len(bound) == 1


def test_bindings_update_points_at_the_version(
    http: httpx.Client, endpoints: SecretEndpointsSandbox
) -> None:
    body = {
        "secret_id": "s-u",
        "stored": {"backend": "vault", "path": "secret/idp/secrets/s-u", "version": 4},
        "bindings": [{"environment_id": "env-u", "target": "k8s:x/y"}],
    }
    for _ in range(2):
        answer = http.post("/secrets/bindings/update", json=body).json()
        assert answer["bindings"] == [
            {"secret_id": "s-u", "environment_id": "env-u", "target": "k8s:x/y", "version": 4}
        ]
    assert [b["version"] for b in endpoints.state()["bindings"] if b["secret_id"] == "s-u"] == [4]


def test_gitops_waits_for_bindings_of_provisioned_secrets(
    http: httpx.Client, endpoints: SecretEndpointsSandbox
) -> None:
    check = {"environment_id": "env-g", "repository": "appenv-env-g"}
    provision = {"environment_id": "env-g", "application_id": "app", "secrets": ["db"]}
    http.post("/appenv/secrets", json=provision)
    waiting = http.post("/appenv/gitops-verify", json=check).json()
    assert waiting["reconciled"] is False and waiting["revision"] is None
    binding = {"secret_id": "s-g", "environment_id": "env-g", "target": "k8s:g/db"}
    http.post("/appenv/secret-bindings", json={"bindings": [binding]})
    done = http.post("/appenv/gitops-verify", json=check).json()
    assert done["reconciled"] is True and done["revision"]
    endpoints.force_gitops("env-g", False, "controller down")
    forced = http.post("/appenv/gitops-verify", json=check).json()
    assert forced["reconciled"] is False and forced["message"] == "controller down"
    endpoints.force_gitops("env-g", None)


def test_deleting_secrets_answers_what_existed_and_a_repeat_nothing(
    http: httpx.Client, endpoints: SecretEndpointsSandbox
) -> None:
    provision = {"environment_id": "env-d", "application_id": "app", "secrets": ["db", "api"]}
    http.post("/appenv/secrets", json=provision)
    body = {"environment_id": "env-d", "secrets": ["db", "never", "db"]}
    first = http.post("/appenv/secrets/delete", json=body)
    second = http.post("/appenv/secrets/delete", json=body)

    assert first.status_code == second.status_code == 200
    assert first.json() == {"environment_id": "env-d", "deleted": ["db"]}
    assert second.json() == {"environment_id": "env-d", "deleted": []}
    left = [s["name"] for s in endpoints.state()["secrets"] if s["environment_id"] == "env-d"]
    assert left == ["api"]
    again = http.post("/appenv/secrets", json=provision).json()["secrets"]
    assert [(s["name"], s["created"]) for s in again] == [("db", True), ("api", False)]


def test_deleting_bindings_answers_the_removed_ones_with_their_version(
    http: httpx.Client, endpoints: SecretEndpointsSandbox
) -> None:
    kept = {"secret_id": "s-x", "environment_id": "env-x", "target": "k8s:x/kept"}
    gone = {"secret_id": "s-x", "environment_id": "env-x", "target": "k8s:x/gone", "version": 2}
    http.post("/appenv/secret-bindings", json={"bindings": [kept, gone]})
    key = {k: gone[k] for k in ("secret_id", "environment_id", "target")}
    body = {"bindings": [key, {**key, "target": "k8s:x/never"}]}
    first = http.post("/appenv/secret-bindings/delete", json=body).json()
    second = http.post("/appenv/secret-bindings/delete", json=body).json()

    assert first == {"bindings": [gone]}
    assert second == {"bindings": []}
    left = [b["target"] for b in endpoints.state()["bindings"] if b["environment_id"] == "env-x"]
    assert left == ["k8s:x/kept"]


@pytest.mark.parametrize(
    "path, body",
    [
        ("/appenv/secrets", {"environment_id": "e", "application_id": "a", "secrets": "db"}),
        ("/appenv/secrets", {"environment_id": "", "application_id": "a", "secrets": []}),
        ("/appenv/secrets/values", {"secret_id": "s"}),
        ("/appenv/secret-bindings", {"bindings": [{"secret_id": "s"}]}),
        ("/appenv/gitops-verify", {"environment_id": "e"}),
        ("/secrets/bindings/update", {"secret_id": "s", "stored": {}, "bindings": []}),
        ("/appenv/secrets/delete", {"environment_id": "e", "secrets": ["../x"]}),
        ("/appenv/secrets/delete", {"secrets": ["db"]}),
        ("/appenv/secret-bindings/delete", {"bindings": [{"secret_id": "s", "target": "t"}]}),
        ("/appenv/secret-bindings/delete", {"bindings": "s"}),
    ],
)
def test_invalid_bodies_get_the_platform_error(http: httpx.Client, path: str, body: dict) -> None:
    response = http.post(path, json=body)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_input"


def test_not_json_and_unknown_route(http: httpx.Client) -> None:
    assert http.post("/appenv/secrets", content=b"{nope").json()["error"]["code"] == "invalid_input"
    unknown = http.post("/appenv/unknown", json={})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"


def test_injected_faults_use_the_platform_body(
    http: httpx.Client, endpoints: SecretEndpointsSandbox
) -> None:
    endpoints.server.faults.add(path="/appenv/secrets", statuses=[429], retry_after=3)
    try:
        response = http.post("/appenv/secrets", json={})
    finally:
        endpoints.server.faults.clear()
    assert response.status_code == 429 and response.headers["retry-after"] == "3"
    assert response.json()["error"]["code"] == "rate_limited"


def test_internal_token_is_enforced_only_when_configured() -> None:
    body = {"environment_id": "e", "repository": "r"}
    with SecretEndpointsSandbox(internal_token="s3cret") as guarded:
        url = guarded.url + "/appenv/gitops-verify"
        missing = httpx.post(url, json=body)
        assert missing.status_code == 401 and missing.json()["error"]["code"] == "unauthorized"
        assert httpx.post(url, json=body, headers={INTERNAL_TOKEN_HEADER: "bad"}).status_code == 401
        assert (
            httpx.post(url, json=body, headers={INTERNAL_TOKEN_HEADER: "s3cret"}).status_code == 200
        )
        delete = guarded.url + "/appenv/secrets/delete"
        undo = {"environment_id": "e", "secrets": ["db"]}
        assert httpx.post(delete, json=undo).status_code == 401
        assert httpx.post(delete, json=undo, headers={INTERNAL_TOKEN_HEADER: "s3cret"}).json() == {
            "environment_id": "e",
            "deleted": [],
        }
