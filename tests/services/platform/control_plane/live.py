"""A service on a real loopback socket for tests that need real concurrent HTTP
(TestClient serialises requests; sockets and uvicorn are what production sees)."""

from __future__ import annotations

from starlette.types import ASGIApp

from sandbox.server import LoopbackServer


class LiveServer(LoopbackServer):
    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app, name="service", lifespan="on")
