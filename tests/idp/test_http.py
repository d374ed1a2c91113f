"""The local tools' client (idp/http.py) against a real server that fails on purpose."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from idp.http import RetryingClient
from sandbox.server import SandboxServer


class Counting:
    """The requests that reached the route (the injected failures never do)."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    async def endpoint(self, request: Request) -> Response:
        key = f"{request.method} {request.url.path}"
        self.calls[key] = self.calls.get(key, 0) + 1
        return JSONResponse({"ok": True})


@pytest.fixture
def server() -> Iterator[tuple[SandboxServer, Counting]]:
    counting = Counting()
    routes = [Route("/thing", counting.endpoint, methods=["GET", "POST"])]
    app = SandboxServer("flaky", routes, lambda: {}, lambda status: {"status": status})
    with app:
        yield app, counting


def client(server: SandboxServer, **options: Any) -> RetryingClient:
    return RetryingClient(base_url=server.url, timeout=options.pop("timeout", 5), **options)


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_a_transient_status_is_retried_until_it_passes(
    server: tuple[SandboxServer, Counting], status: int
) -> None:
    app, counting = server
    app.faults.add(path="^/thing$", statuses=[status, status, 200])

    with client(app) as http:
        response = http.get("/thing")

    assert response.status_code == 200
    assert counting.calls == {"GET /thing": 1}  # the two failures never reached the route
    assert app.faults.injected == {status: 2}


def test_retries_are_bounded_and_the_last_answer_is_returned(
    server: tuple[SandboxServer, Counting],
) -> None:
    app, _ = server
    app.faults.add(path="^/thing$", statuses=[503] * 10)

    with client(app, attempts=3) as http:
        response = http.get("/thing")

    assert response.status_code == 503
    assert app.faults.injected == {503: 3}


def test_a_permanent_error_is_not_retried(server: tuple[SandboxServer, Counting]) -> None:
    app, _ = server
    app.faults.add(path="^/thing$", statuses=[404, 200])

    with client(app) as http:
        assert http.get("/thing").status_code == 404


def test_a_read_that_times_out_is_repeated(server: tuple[SandboxServer, Counting]) -> None:
    app, counting = server
    app.faults.add(path="^/thing$", response_delay_ms=1500, times=1)

    with client(app, timeout=0.5) as http:
        assert http.get("/thing").status_code == 200
    assert counting.calls == {"GET /thing": 2}


def test_a_write_that_times_out_is_repeated_only_with_an_idempotency_key(
    server: tuple[SandboxServer, Counting],
) -> None:
    app, counting = server
    app.faults.add(path="^/thing$", response_delay_ms=1500, times=1)
    with client(app, timeout=0.5) as http, pytest.raises(httpx.ReadTimeout):
        http.post("/thing", json={})
    assert counting.calls == {"POST /thing": 1}  # it may have happened: not sent again

    app.faults.add(path="^/thing$", response_delay_ms=1500, times=1)
    with client(app, timeout=0.5) as http:
        response = http.post("/thing", json={}, headers={"Idempotency-Key": "k-1"})
    assert response.status_code == 200
    assert counting.calls == {"POST /thing": 3}
