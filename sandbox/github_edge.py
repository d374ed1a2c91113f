"""The edge of the GitHub sandbox: token check, rate limit, headers and request recording.

It wraps the whole app (fault injection included), so every answer — real, injected or
refused — carries GitHub's ``x-ratelimit-*`` headers, a wrong token gets GitHub's 401 even
while faults are scripted, and recordings see exactly the bytes a client saw. The rate
limit is a real counter: exhaust it (``RateLimit.set(remaining=0)``) and the sandbox
answers GitHub's primary-limit 403 with ``x-ratelimit-remaining: 0`` until the reset.
"""

from __future__ import annotations

import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

RATE_LIMIT_DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
# Statuses that never carry a body: the server ends them with their headers.
BODILESS = frozenset({204, 304})


@dataclass(frozen=True)
class Exchange:
    """One request and the answer the client got, as bytes on the wire."""

    method: str
    path: str
    query: str
    request_headers: dict[str, str]
    request_body: bytes
    status: int
    response_headers: dict[str, str]
    response_body: bytes

    def request_json(self) -> Any:
        return json.loads(self.request_body) if self.request_body else None

    def response_json(self) -> Any:
        return json.loads(self.response_body) if self.response_body else None


@dataclass
class RateLimit:
    """GitHub's primary limit for one token: ``limit`` requests per ``window`` seconds."""

    limit: int = 5000
    window: float = 3600.0
    remaining: int = 5000
    reset: float = field(default_factory=lambda: time.time() + 3600.0)
    status: int = 403
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def set(self, *, remaining: int, reset_in: float = 3600.0, status: int = 403) -> None:
        """Jump to a state, e.g. ``remaining=0`` to see the primary-limit answer."""
        with self._lock:
            self.remaining = max(0, min(remaining, self.limit))
            self.reset = time.time() + reset_in
            self.status = status

    def take(self, *, count: bool = True) -> tuple[bool, list[tuple[bytes, bytes]]]:
        """Count one request; False when the limit is exhausted. Returns the headers."""
        with self._lock:
            now = time.time()
            if now >= self.reset:
                self.remaining, self.reset = self.limit, now + self.window
            allowed = self.remaining > 0
            if allowed and count:
                self.remaining -= 1
            values = {
                "limit": self.limit,
                "remaining": self.remaining,
                "used": self.limit - self.remaining,
                "reset": int(self.reset),
            }
        headers = [(f"x-ratelimit-{k}".encode(), str(v).encode()) for k, v in values.items()]
        return allowed, [*headers, (b"x-ratelimit-resource", b"core")]


def _authorized(scope: Scope, token: str) -> str | None:
    """None when the token is right, else GitHub's 401 message."""
    raw = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
    scheme, _, value = raw.partition(" ")
    if not raw:
        return "Requires authentication"
    if scheme.lower() in ("token", "bearer") and hmac.compare_digest(value.strip(), token):
        return None
    return "Bad credentials"


class GitHubEdge:
    """ASGI middleware in front of the sandbox app (see module docstring)."""

    def __init__(self, app: ASGIApp, *, token: str, rate_limit: RateLimit) -> None:
        self.app = app
        self.token = token
        self.rate_limit = rate_limit
        self._recordings: list[list[Exchange]] = []
        self._lock = threading.Lock()

    @contextmanager
    def recording(self) -> Iterator[list[Exchange]]:
        """Collect every API exchange made inside the block (control routes excluded)."""
        exchanges: list[Exchange] = []
        with self._lock:
            self._recordings.append(exchanges)
        try:
            yield exchanges
        finally:
            with self._lock:
                self._recordings.remove(exchanges)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sandbox"):
            await self.app(scope, receive, send)
            return
        with self._lock:
            recording = bool(self._recordings)
        if not recording:
            await self._serve(scope, receive, send)
            return
        request_body = bytearray()
        response: dict[str, Any] = {"status": 0, "headers": [], "body": bytearray()}

        async def recv() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                request_body.extend(message.get("body", b""))
            return message

        async def snd(message: Message) -> None:
            # Record before the last byte leaves: once the client has the answer, its
            # ``with recording()`` block may already be closed. A 204 is complete with its
            # headers (h11 sends nothing more), so it is recorded before they go.
            if message["type"] == "http.response.start":
                response["status"], response["headers"] = message["status"], message["headers"]
                if response["status"] in BODILESS:
                    self._record(scope, bytes(request_body), response)
            elif message["type"] == "http.response.body":
                response["body"].extend(message.get("body", b""))
                if not message.get("more_body", False) and response["status"] not in BODILESS:
                    self._record(scope, bytes(request_body), response)
            await send(message)

        await self._serve(scope, recv, snd)

    def _record(self, scope: Scope, request_body: bytes, response: dict[str, Any]) -> None:
        exchange = Exchange(
            method=scope["method"],
            path=scope["path"],
            query=scope["query_string"].decode("latin-1"),
            request_headers={k.decode().lower(): v.decode("latin-1") for k, v in scope["headers"]},
            request_body=request_body,
            status=response["status"],
            response_headers={
                k.decode().lower(): v.decode("latin-1") for k, v in response["headers"]
            },
            response_body=bytes(response["body"]),
        )
        with self._lock:
            for exchanges in self._recordings:
                exchanges.append(exchange)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        denied = _authorized(scope, self.token)
        # A rejected token is not this token's request: report the limit, do not count it.
        allowed, limit_headers = self.rate_limit.take(count=denied is None)
        if denied is not None:
            await _answer(send, 401, denied, "https://docs.github.com/rest", limit_headers)
            return
        if not allowed:
            message = "API rate limit exceeded for user ID 1."
            await _answer(send, self.rate_limit.status, message, RATE_LIMIT_DOCS, limit_headers)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = [*message.get("headers", []), *limit_headers]
            await send(message)

        await self.app(scope, receive, with_headers)


async def _answer(
    send: Send, status: int, message: str, docs: str, headers: list[tuple[bytes, bytes]]
) -> None:
    body = json.dumps({"message": message, "documentation_url": docs, "status": str(status)})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body.encode()})
