"""The auth matrix of both services, over real HTTP: every internal endpoint refuses every
way of not presenting ``X-Internal-Token`` exactly, and does nothing meanwhile.

The routes come from the running apps themselves (``app.routes``, including any left out
of the OpenAPI document), so an endpoint added later is in the matrix without anyone
editing this file. Per-service tables with the expected normal answers live next to each
service (``tests/services/*/test_auth.py``); this suite adds the ways a token can be
almost right, or sent where it does not count, and checks state on both sides afterwards.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import SecretStr

from core.internal_auth import INTERNAL_TOKEN_HEADER
from sandbox.run import Sandbox
from sandbox.server import LoopbackServer
from services.platform.execution_workers.app import create_app as create_workers
from tests.security.conftest import INTERNAL_TOKEN, SecuredControlPlane
from tests.security.test_secret_leaks import database_rows
from tests.services.platform.execution_workers.support import workers_settings

pytestmark = pytest.mark.security

HEADER = INTERNAL_TOKEN_HEADER
# Operational routes a load balancer and Prometheus call without credentials, and the docs.
OPEN_PATHS = {"/health", "/ready", "/metrics", "/openapi.json", "/docs", "/redoc"}
OPEN_PREFIXES = ("/api/v1/", "/docs/")

# Every way of presenting the token that must not count (name -> request options).
NOT_THE_TOKEN: dict[str, dict[str, Any]] = {
    "missing": {},
    "wrong": {"headers": {HEADER: "wrong"}},
    "empty": {"headers": {HEADER: ""}},
    "prefix": {"headers": {HEADER: INTERNAL_TOKEN[:-1]}},
    "longer": {"headers": {HEADER: INTERNAL_TOKEN + "x"}},
    "other case": {"headers": {HEADER: INTERNAL_TOKEN.swapcase()}},
    "bearer": {"headers": {"Authorization": f"Bearer {INTERNAL_TOKEN}"}},
    "query": {"params": {HEADER: INTERNAL_TOKEN, "token": INTERNAL_TOKEN}},
    "cookie": {"headers": {"Cookie": f"{HEADER}={INTERNAL_TOKEN}"}},
}


def internal_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, concrete path) of every route that is neither public nor operational."""
    found = []
    # FastAPI 0.150 mounts included routers lazily; this walks them with their prefixes.
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute) or route.path is None:
            continue
        if route.path in OPEN_PATHS or route.path.startswith(OPEN_PREFIXES):
            continue
        path = re.sub(r"\{[^}]+\}", "sec-auth-probe", route.path)
        found += [(method, path) for method in sorted(route.methods or ())]
    return sorted(found)


@pytest.fixture(scope="module")
def workers(sandbox: Sandbox, control_plane: SecuredControlPlane) -> Iterator[LoopbackServer]:
    settings = workers_settings(
        sandbox, control_plane.url, INTERNAL_AUTH_TOKEN=SecretStr(INTERNAL_TOKEN)
    )
    with LoopbackServer(create_workers(settings), name="execution-workers", lifespan="on") as s:
        yield s


def services(
    control_plane: SecuredControlPlane, workers: LoopbackServer
) -> dict[str, tuple[str, list[tuple[str, str]]]]:
    workers_app = workers.app
    assert isinstance(workers_app, FastAPI)
    return {
        "control-plane": (control_plane.url, internal_routes(control_plane.app)),
        "execution-workers": (workers.url, internal_routes(workers_app)),
    }


def test_every_internal_route_is_in_the_matrix(
    control_plane: SecuredControlPlane, workers: LoopbackServer
) -> None:
    found = services(control_plane, workers)
    control_paths = {p for _, p in found["control-plane"][1]}
    assert all(p.startswith("/internal/v1/") for p in control_paths)
    assert len(found["control-plane"][1]) >= 12
    workers_paths = {p for _, p in found["execution-workers"][1]}
    assert workers_paths >= {"/github/repos", "/appenv/secrets", "/secrets/bindings/update"}


@pytest.mark.parametrize("variant", sorted(NOT_THE_TOKEN))
def test_anything_but_the_exact_token_is_401_and_changes_nothing(
    variant: str,
    sandbox: Sandbox,
    control_plane: SecuredControlPlane,
    workers: LoopbackServer,
) -> None:
    database_before, sandbox_before = database_rows(control_plane), sandbox.state()
    answers: dict[tuple[str, str, str], tuple[int, str]] = {}
    for service, (url, routes) in services(control_plane, workers).items():
        with httpx.Client(base_url=url, timeout=10) as client:
            for method, path in routes:
                response = client.request(method, path, json={}, **NOT_THE_TOKEN[variant])
                code = response.json().get("error", {}).get("code", "?")
                answers[(service, method, path)] = (response.status_code, code)
    assert answers == dict.fromkeys(answers, (401, "unauthorized"))
    assert database_rows(control_plane) == database_before
    assert sandbox.state() == sandbox_before


def test_the_exact_token_reaches_every_handler(
    control_plane: SecuredControlPlane, workers: LoopbackServer
) -> None:
    statuses = {}
    for service, (url, routes) in services(control_plane, workers).items():
        with httpx.Client(base_url=url, timeout=10, headers={HEADER: INTERNAL_TOKEN}) as client:
            for method, path in routes:
                statuses[(service, method, path)] = client.request(
                    method, path, json={}
                ).status_code
    # The probe ids do not exist and the bodies are empty: 404 or 422, never 401 (or 5xx).
    assert {s for s in statuses.values()} <= {200, 201, 404, 409, 412, 422}, statuses


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS", "PUT", "DELETE", "PATCH", "TRACE"])
def test_other_methods_on_internal_paths_expose_nothing(
    method: str, control_plane: SecuredControlPlane, workers: LoopbackServer
) -> None:
    for url, routes in services(control_plane, workers).values():
        with httpx.Client(base_url=url, timeout=10) as client:
            for path in {p for _, p in routes}:
                response = client.request(method, path)
                assert response.status_code in {401, 404, 405}, (method, path, response.text)


def test_a_path_that_only_looks_internal_is_not_a_way_around(
    control_plane: SecuredControlPlane,
) -> None:
    # Redirects are followed: a trailing slash is redirected to the canonical path (307),
    # which asks for the token like any other.
    with httpx.Client(base_url=control_plane.url, timeout=10, follow_redirects=True) as client:
        for path in (
            "/INTERNAL/v1/rotations/due",
            "/api/v1/../internal/v1/rotations/due",
            "/internal/v1//rotations/due",
            "/internal/v1/rotations/due/",
            "//internal/v1/rotations/due",
        ):
            response = client.get(path)
            assert response.status_code in {401, 404, 405}, (path, response.status_code)
