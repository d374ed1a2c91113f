"""INTERNAL_AUTH_TOKEN over every route the app serves: the list comes from the app's own
OpenAPI document, so a route added later cannot escape the matrix."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from core.internal_auth import INTERNAL_TOKEN_HEADER
from sandbox.run import Sandbox
from services.platform.execution_workers.app import create_app
from services.platform.execution_workers.settings import ExecutionWorkersSettings
from tests.services.platform.execution_workers.support import TOKEN, error_code, workers_settings

# Operational routes a load balancer and Prometheus call without credentials.
OPEN_ROUTES = {("GET", "/health"), ("GET", "/ready"), ("GET", "/metrics")}


def _routes(settings: ExecutionWorkersSettings) -> list[tuple[str, str]]:
    schema = create_app(settings).openapi()
    return sorted(
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method in operations
    )


ALL_ROUTES = _routes(ExecutionWorkersSettings(CONTROL_PLANE_URL=""))
PROTECTED = [route for route in ALL_ROUTES if route not in OPEN_ROUTES]


def test_the_matrix_covers_every_seed_endpoint() -> None:
    paths = {path for _, path in PROTECTED}
    assert paths >= {
        "/github/repos",
        "/appenv/branch-protection",
        "/appenv/secrets",
        "/appenv/secret-bindings",
        "/appenv/gitops-verify",
        "/secrets/bindings/update",
        "/github/repos/delete",
        "/appenv/secrets/delete",
        "/appenv/secret-bindings/delete",
    }
    assert set(ALL_ROUTES) >= OPEN_ROUTES


@pytest.fixture
def guarded(sandbox: Sandbox) -> Iterator[TestClient]:
    settings = workers_settings(sandbox, INTERNAL_AUTH_TOKEN=SecretStr(TOKEN))
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def open_app(sandbox: Sandbox) -> Iterator[TestClient]:
    with TestClient(create_app(workers_settings(sandbox)), raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize(("method", "path"), PROTECTED)
@pytest.mark.parametrize(
    "headers", [{}, {INTERNAL_TOKEN_HEADER: "wrong"}], ids=["missing", "wrong"]
)
def test_without_the_right_token_every_handler_answers_401(
    guarded: TestClient, method: str, path: str, headers: dict[str, str]
) -> None:
    # An empty body would be 422 if auth ran second: 401 proves it runs first.
    response = guarded.request(method, path, json={}, headers=headers)
    assert (response.status_code, error_code(response)) == (401, "unauthorized")


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_with_the_right_token_the_request_reaches_the_handler(
    guarded: TestClient, method: str, path: str
) -> None:
    response = guarded.request(method, path, json={}, headers={INTERNAL_TOKEN_HEADER: TOKEN})
    assert (response.status_code, error_code(response)) == (422, "invalid_input")


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_without_a_configured_token_nothing_is_enforced(
    open_app: TestClient, method: str, path: str
) -> None:
    response = open_app.request(method, path, json={})
    assert (response.status_code, error_code(response)) == (422, "invalid_input")


@pytest.mark.parametrize(("method", "path"), sorted(OPEN_ROUTES))
def test_operational_routes_need_no_token(guarded: TestClient, method: str, path: str) -> None:
    assert guarded.request(method, path).status_code == 200


def test_a_real_request_with_the_token_succeeds(guarded: TestClient) -> None:
    body = {"environment_id": "env-auth", "repository": "appenv-env-auth"}
    response = guarded.post(
        "/appenv/gitops-verify", json=body, headers={INTERNAL_TOKEN_HEADER: TOKEN}
    )
    assert response.status_code == 200
