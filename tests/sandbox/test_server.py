"""The sandbox plumbing every fake server shares: faults, refusal, control routes."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.server import SandboxServer


async def _hello(request: Request) -> Response:
    return JSONResponse({"hello": "world"})


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    srv = SandboxServer(
        "test",
        [Route("/hello", _hello, methods=["GET", "POST"])],
        lambda: {"greetings": 1},
        lambda status: {"errors": [{"code": "INJECTED", "status": status}]},
    )
    with srv:
        yield srv


@pytest.fixture
def http(server: SandboxServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url) as client:
        yield client


def test_serves_the_app_and_its_state(server: SandboxServer, http: httpx.Client) -> None:
    assert http.get("/hello").json() == {"hello": "world"}
    assert http.get("/_sandbox/state").json() == {"greetings": 1}


def test_scripted_statuses_play_in_order_then_pass_through(
    server: SandboxServer, http: httpx.Client
) -> None:
    server.faults.add(path="^/hello$", statuses=[503, 503, 200])
    got = [http.get("/hello").status_code for _ in range(4)]
    assert got == [503, 503, 200, 200]
    body = http.get("/hello").json()
    assert body == {"hello": "world"}


def test_injected_errors_use_the_vendor_body(server: SandboxServer, http: httpx.Client) -> None:
    server.faults.add(statuses=[502])
    response = http.get("/hello")
    assert response.status_code == 502
    assert response.json() == {"errors": [{"code": "INJECTED", "status": 502}]}


def test_rate_limit_carries_retry_after(server: SandboxServer, http: httpx.Client) -> None:
    server.faults.add(statuses=[429], retry_after=7)
    response = http.get("/hello")
    assert (response.status_code, response.headers["retry-after"]) == (429, "7")


def test_seeded_failure_rate_is_repeatable(server: SandboxServer, http: httpx.Client) -> None:
    def run() -> list[int]:
        server.faults.clear()
        server.faults.add(failure_rate=0.3, seed=42, failure_status=500)
        return [http.get("/hello").status_code for _ in range(40)]

    first, second = run(), run()
    assert first == second
    assert 0 < first.count(500) < 40


def test_rules_match_method_and_stop_after_times(server: SandboxServer, http: httpx.Client) -> None:
    server.faults.add(method="POST", failure_rate=1, failure_status=500, times=2)
    assert http.get("/hello").status_code == 200
    posts = [http.post("/hello").status_code for _ in range(3)]
    assert posts == [500, 500, 200]


def test_latency_is_added(server: SandboxServer, http: httpx.Client) -> None:
    server.faults.add(latency_ms=200)
    started = time.monotonic()
    http.get("/hello")
    assert time.monotonic() - started >= 0.19


def test_a_late_answer_comes_after_the_work_is_done() -> None:
    calls: list[float] = []

    async def work(request: Request) -> Response:
        calls.append(time.monotonic())
        return JSONResponse({"done": True})

    error_body = lambda status: {"status": status}  # noqa: E731
    with SandboxServer("late", [Route("/work", work, methods=["POST"])], dict, error_body) as srv:
        srv.faults.add(path="^/work$", response_delay_ms=400, times=1)
        with httpx.Client(base_url=srv.url) as http:
            with pytest.raises(httpx.ReadTimeout):
                http.post("/work", timeout=0.2)  # the client gives up ...
            assert len(calls) == 1  # ... but the work was done
            started = time.monotonic()
            assert http.post("/work").json() == {"done": True}  # times=1: next one is prompt
            assert time.monotonic() - started < 0.3


def test_faults_can_be_set_over_http(server: SandboxServer, http: httpx.Client) -> None:
    created = http.post("/_sandbox/faults", json={"statuses": [504]})
    assert created.status_code == 201
    assert http.get("/hello").status_code == 504
    assert http.get("/_sandbox/faults").json()["injected"] == {"504": 1}
    assert http.delete("/_sandbox/faults").status_code == 204
    assert http.get("/_sandbox/faults").json()["rules"] == []


def test_refused_connections_then_back_on_the_same_port(
    server: SandboxServer, http: httpx.Client
) -> None:
    port = server.port
    assert http.post("/_sandbox/refuse", json={"seconds": 0.6}).status_code == 202
    time.sleep(0.2)
    with pytest.raises(httpx.ConnectError):
        http.get("/hello")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if http.get("/hello").status_code == 200:
                break
        except httpx.ConnectError:
            time.sleep(0.05)
    assert server.port == port
    assert http.get("/hello").status_code == 200
