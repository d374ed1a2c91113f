"""The shared service plumbing: one error body, internal auth, route-template metrics."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from pydantic import BaseModel, Field, SecretStr

from core import errors
from core.internal_auth import INTERNAL_TOKEN_HEADER
from services.http import (
    HTTPMetricsMiddleware,
    http_requests_counter,
    install_error_handlers,
    internal_auth,
)


class Body(BaseModel):
    name: str = Field(min_length=2)
    size: int = Field(ge=1)


def build(token: str | None = None) -> tuple[FastAPI, CollectorRegistry]:
    registry = CollectorRegistry()
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(
        HTTPMetricsMiddleware, counter=http_requests_counter(registry), service="test-svc"
    )
    outer = APIRouter(prefix="/api")
    inner = APIRouter(prefix="/things")

    @inner.post("/{thing_id}")
    def create(thing_id: str, body: Body) -> dict[str, str]:
        return {"id": thing_id}

    @inner.get("/{thing_id}/raise/{code}")
    def fail(thing_id: str, code: str) -> None:
        raise errors.error_for_code(code)("it failed", details={"thing": thing_id})

    @inner.get("/{thing_id}/crash")
    def crash(thing_id: str) -> None:
        raise RuntimeError("bug with a s3cr3t inside")

    outer.include_router(inner)
    app.include_router(outer)
    secured = APIRouter(
        prefix="/internal",
        dependencies=[Depends(internal_auth(SecretStr(token) if token else None))],
    )

    @secured.get("/ping")
    def ping() -> dict[str, bool]:
        return {"pong": True}

    app.include_router(secured)
    return app, registry


@pytest.mark.parametrize(
    "code, status",
    [
        ("not_found", 404),
        ("illegal_transition", 409),
        ("secret_locked", 409),
        ("precondition_failed", 412),
        ("invalid_input", 422),
        ("unauthorized", 401),
        ("workflow_engine_unavailable", 503),
        ("upstream_timeout", 504),
        ("rate_limited", 429),
        ("upstream_rejected", 502),
    ],
)
def test_domain_errors_become_their_status_with_one_body(code: str, status: int) -> None:
    app, _ = build()
    response = TestClient(app).get(f"/api/things/t1/raise/{code}")
    assert response.status_code == status
    assert response.json() == {
        "error": {"code": code, "message": "it failed", "details": {"thing": "t1"}}
    }


def test_bad_body_is_422_invalid_input_naming_each_field_without_echoing_values() -> None:
    app, _ = build()
    response = TestClient(app).post("/api/things/t1", json={"name": "x", "size": 0})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert {f["field"] for f in error["details"]["fields"]} == {"name", "size"}
    assert "'x'" not in response.text


def test_malformed_json_is_422_invalid_input() -> None:
    app, _ = build()
    response = TestClient(app).post(
        "/api/things/t1", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_input"


@pytest.mark.parametrize(
    "method, path, status, code",
    [
        ("GET", "/nowhere", 404, "not_found"),
        ("DELETE", "/api/things/t1", 405, "method_not_allowed"),
    ],
)
def test_unknown_routes_and_methods_use_the_error_body(
    method: str, path: str, status: int, code: str
) -> None:
    app, _ = build()
    response = TestClient(app).request(method, path)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


def test_a_bug_is_500_internal_error_without_details() -> None:
    app, _ = build()
    response = TestClient(app, raise_server_exceptions=False).get("/api/things/t1/crash")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert "s3cr3t" not in response.text


@pytest.mark.parametrize(
    "headers, status",
    [({}, 401), ({INTERNAL_TOKEN_HEADER: "wrong"}, 401), ({INTERNAL_TOKEN_HEADER: "t0ken"}, 200)],
)
def test_internal_token_is_required_when_configured(headers: dict[str, str], status: int) -> None:
    app, _ = build(token="t0ken")
    response = TestClient(app).get("/internal/ping", headers=headers)
    assert response.status_code == status
    if status == 401:
        assert response.json()["error"]["code"] == "unauthorized"


def test_no_token_configured_means_no_enforcement() -> None:
    app, _ = build(token=None)
    assert TestClient(app).get("/internal/ping").status_code == 200


def test_requests_are_counted_by_route_template_not_raw_path() -> None:
    app, registry = build(token="t0ken")
    client = TestClient(app, raise_server_exceptions=False)
    for thing in ("a1", "b2", "c3"):
        client.post(f"/api/things/{thing}", json={"name": "ok", "size": 1})
    client.get("/api/things/a1/crash")
    client.get("/internal/ping")
    client.get("/nowhere/at/all")

    def count(route: str, method: str, status: str) -> float | None:
        return registry.get_sample_value(
            "http_requests_total",
            {"service": "test-svc", "route": route, "method": method, "status": status},
        )

    assert count("/api/things/{thing_id}", "POST", "200") == 3
    assert count("/api/things/{thing_id}/crash", "GET", "500") == 1
    assert count("/internal/ping", "GET", "401") == 1
    assert count("<unmatched>", "GET", "404") == 1
    assert count("/api/things/a1", "POST", "200") is None
