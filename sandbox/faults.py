"""Fault injection shared by every sandbox server.

A rule matches requests by method and path (a regular expression over the path) and
then adds latency, fails a seeded fraction of requests, plays a scripted status sequence
(for example 503, 503, 200) or answers 429 with ``Retry-After``. ``latency_ms`` delays a
request before it is handled (a queue); ``response_delay_ms`` delays the answer after the
work is done (the client may give up, but the side effect happened). Rules are set from
Python (tests in the same process) or over HTTP at ``/_sandbox/faults`` (benchmarks and
subprocess tests). Error bodies are the vendor's own, built by the server's
``error_body`` function, so clients see exactly what the real service would send.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ErrorBody = Callable[[int], dict[str, Any]]


class FaultRule(BaseModel):
    """One injected behaviour. Fields combine: latency applies before any failure."""

    method: str | None = Field(None, description="HTTP method to match; any when unset")
    path: str = Field(".*", description="Regular expression searched in the request path")
    latency_ms: float = Field(0, ge=0, description="Delay added before handling the request")
    response_delay_ms: float = Field(
        0, ge=0, description="Delay added after handling it, before the answer is sent"
    )
    failure_rate: float = Field(0, ge=0, le=1, description="Fraction of requests that fail")
    failure_status: int = Field(503, ge=400, le=599)
    seed: int | None = Field(None, description="Seed of the failure draw, for repeatable runs")
    statuses: list[int] = Field(
        default_factory=list,
        description="Scripted statuses, one per matching request; 200 passes through",
    )
    retry_after: float | None = Field(None, description="Retry-After header on 429 answers")
    times: int | None = Field(None, ge=1, description="Stop matching after this many requests")


@dataclass
class _ActiveRule:
    rule: FaultRule
    pattern: re.Pattern[str]
    rng: random.Random
    script: list[int] = field(default_factory=list)
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.rule.times is not None and self.hits >= self.rule.times:
            return False
        if self.rule.method and self.rule.method.upper() != method.upper():
            return False
        return bool(self.pattern.search(path))


class FaultInjector:
    """Thread-safe set of fault rules consulted by ``FaultMiddleware``."""

    def __init__(self) -> None:
        self._rules: list[_ActiveRule] = []
        self._lock = threading.Lock()
        self.injected: dict[int, int] = {}

    def add(self, rule: FaultRule | None = None, **fields: Any) -> FaultRule:
        rule = rule or FaultRule(**fields)
        active = _ActiveRule(
            rule=rule,
            pattern=re.compile(rule.path),
            rng=random.Random(rule.seed),  # fault draws, not crypto
            script=list(rule.statuses),
        )
        with self._lock:
            self._rules.append(active)
        return rule

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[FaultRule]:
        with self._lock:
            return [r.rule for r in self._rules]

    def decide(self, method: str, path: str) -> tuple[float, int | None, float | None]:
        """Return (latency seconds, status to fail with or None, retry-after)."""
        latency, status, retry_after, _ = self.decide_request(method, path)
        return latency, status, retry_after

    def decide_request(
        self, method: str, path: str
    ) -> tuple[float, int | None, float | None, float]:
        """Return (latency, status to fail with or None, retry-after, response delay)."""
        latency = delay = 0.0
        with self._lock:
            for active in self._rules:
                if not active.matches(method, path):
                    continue
                active.hits += 1
                latency += active.rule.latency_ms / 1000
                delay += active.rule.response_delay_ms / 1000
                status: int | None = None
                if active.script:
                    scripted = active.script.pop(0)
                    status = None if scripted < 400 else scripted
                elif active.rule.failure_rate and active.rng.random() < active.rule.failure_rate:
                    status = active.rule.failure_status
                if status is not None:
                    self.injected[status] = self.injected.get(status, 0) + 1
                    return latency, status, active.rule.retry_after, 0.0
        return latency, None, None, delay


class FaultMiddleware:
    """ASGI middleware: applies the injector's decision, then calls the real app."""

    def __init__(
        self, app: ASGIApp, injector: FaultInjector, error_body: ErrorBody, prefix: str = ""
    ) -> None:
        self.app = app
        self.injector = injector
        self.error_body = error_body
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sandbox"):
            await self.app(scope, receive, send)
            return
        latency, status, retry_after, delay = self.injector.decide_request(
            scope["method"], scope["path"]
        )
        if latency:
            await asyncio.sleep(latency)
        if status is None and delay:
            await self._answer_late(scope, receive, send, delay)
            return
        if status is None:
            await self.app(scope, receive, send)
            return
        body = json.dumps(self.error_body(status)).encode()
        headers = [(b"content-type", b"application/json; charset=utf-8")]
        if status == 429 and retry_after is not None:
            headers.append((b"retry-after", str(int(retry_after)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _answer_late(self, scope: Scope, receive: Receive, send: Send, delay: float) -> None:
        """Handle the request now, hold the answer back ``delay`` seconds, then send it."""
        held: list[Message] = []

        async def hold(message: Message) -> None:
            held.append(message)

        await self.app(scope, receive, hold)
        await asyncio.sleep(delay)
        try:
            for message in held:
                await send(message)
        except OSError:  # the client gave up meanwhile; the work stands
            pass
