"""Run a sandbox ASGI app on loopback in a background thread.

Each server owns its listening socket, so it can stop listening for a while
(``refuse_connections``: clients then get a real ``ECONNREFUSED``) and come back on the
same port. Every app gets the control routes under ``/_sandbox``: ``GET state``,
``GET/POST/DELETE faults`` and ``POST refuse``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, Literal, Self

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from sandbox.faults import ErrorBody, FaultInjector, FaultMiddleware, FaultRule


def control_routes(
    injector: FaultInjector,
    state: Callable[[], dict[str, Any]],
    refuse: Callable[[float], None] | None = None,
) -> list[BaseRoute]:
    """The ``/_sandbox`` routes every server exposes (read-only state, fault control)."""

    async def get_state(request: Request) -> Response:
        return JSONResponse(state())

    async def list_faults(request: Request) -> Response:
        return JSONResponse(
            {"rules": [r.model_dump() for r in injector.rules()], "injected": injector.injected}
        )

    async def add_fault(request: Request) -> Response:
        rule = injector.add(FaultRule.model_validate(await request.json()))
        return JSONResponse(rule.model_dump(), status_code=201)

    async def clear_faults(request: Request) -> Response:
        injector.clear()
        return Response(status_code=204)

    async def refuse_for(request: Request) -> Response:
        if refuse is None:
            return JSONResponse({"message": "not supported"}, status_code=400)
        seconds = float((await request.json()).get("seconds", 10))
        # Answer first, then stop listening: the caller must get this response.
        threading.Timer(0.05, refuse, args=(seconds,)).start()
        return JSONResponse({"refusing_for": seconds}, status_code=202)

    return [
        Route("/_sandbox/state", get_state, methods=["GET"]),
        Route("/_sandbox/faults", list_faults, methods=["GET"]),
        Route("/_sandbox/faults", add_fault, methods=["POST"]),
        Route("/_sandbox/faults", clear_faults, methods=["DELETE"]),
        Route("/_sandbox/refuse", refuse_for, methods=["POST"]),
    ]


class LoopbackServer:
    """An ASGI app served by uvicorn in a daemon thread on 127.0.0.1 (ephemeral port by
    default). The sandbox servers use it, and so do tests that need a real service on a
    real socket (the control plane, execution-workers)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        name: str = "app",
        host: str = "127.0.0.1",
        port: int = 0,
        lifespan: Literal["on", "off", "auto"] = "off",
    ) -> None:
        self.app = app
        self.name = name
        self.host = host
        self.lifespan = lifespan
        self._requested_port = port
        self._sock: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        with self._lock:
            self._listen()
        return self

    def stop(self) -> None:
        with self._lock:
            self._shutdown()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def refuse_connections(self, seconds: float) -> None:
        """Stop listening for ``seconds``; connections meanwhile are refused by the OS."""
        with self._lock:
            self._shutdown()
        timer = threading.Timer(seconds, self._resume)
        timer.daemon = True
        timer.start()

    def _resume(self) -> None:
        with self._lock:
            if self._server is None:
                self._listen()

    def _listen(self) -> None:
        # proto must be IPPROTO_TCP: asyncio only sets TCP_NODELAY on accepted connections
        # when it is, and without it every response waits ~40 ms on delayed ACKs.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port or self._requested_port))
        sock.listen(1024)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan=self.lifespan,
            http="h11",  # Vault clients send the LIST verb, which httptools rejects
            timeout_keep_alive=30,
            backlog=1024,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=lambda: asyncio.run(server.serve(sockets=[sock])),
            name=f"loopback-{self.name}",
            daemon=True,
        )
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} failed to start")
            time.sleep(0.01)
        self._sock, self._server, self._thread = sock, server, thread

    def _shutdown(self) -> None:
        server, thread, sock = self._server, self._thread, self._sock
        self._server = self._thread = self._sock = None
        if server is None:
            return
        server.should_exit = True
        if thread is not None:
            thread.join(timeout=10)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()


class SandboxServer(LoopbackServer):
    """One sandbox app: the vendor routes, the ``/_sandbox`` control routes and fault
    injection in front of both."""

    def __init__(
        self,
        name: str,
        routes: list[BaseRoute],
        state: Callable[[], dict[str, Any]],
        error_body: ErrorBody,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.faults = FaultInjector()
        app = Starlette(routes=control_routes(self.faults, state, self.refuse_connections) + routes)
        super().__init__(
            FaultMiddleware(app, self.faults, error_body), name=name, host=host, port=port
        )
