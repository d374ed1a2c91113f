"""An httpx client for the local platform's own tools (demo, stack, benchmarks, e2e tests).

The APIs they read (Prefect's server, the control plane) answer a transient error now and
then: a timeout while the machine is busy, a 503 from a server that is starting or whose
database is busy. ``RetryingClient`` repeats such a request a bounded number of times
with exponential backoff (honouring ``Retry-After``), as Prefect's own client does, and
then gives up with the last error. A request is repeated after a timeout or a dropped
connection only if repeating it is harmless: a read, or a write that carries an
``Idempotency-Key``.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import httpx

RETRY_STATUSES = frozenset({408, 429, 502, 503, 504})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ATTEMPTS = 6
FIRST_DELAY_SECONDS = 0.25
MAX_DELAY_SECONDS = 5.0


def _may_repeat(request: httpx.Request) -> bool:
    return request.method in SAFE_METHODS or "idempotency-key" in request.headers


def _delay(attempt: int, response: httpx.Response | None) -> float:
    delay = min(FIRST_DELAY_SECONDS * 2**attempt, MAX_DELAY_SECONDS)
    after = response.headers.get("retry-after") if response is not None else None
    if after:
        with contextlib.suppress(ValueError):  # an HTTP date: keep our own backoff
            delay = max(delay, min(float(after), MAX_DELAY_SECONDS * 4))
    return delay


class RetryingClient(httpx.Client):
    """``httpx.Client`` that retries transient failures (see the module docstring)."""

    def __init__(self, *args: Any, attempts: int = ATTEMPTS, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.attempts = attempts

    def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        for attempt in range(self.attempts):
            last = attempt == self.attempts - 1
            try:
                response = super().send(request, **kwargs)
            except (httpx.TimeoutException, httpx.NetworkError):
                if last or not _may_repeat(request):
                    raise
                time.sleep(_delay(attempt, None))
                continue
            if response.status_code not in RETRY_STATUSES or last:
                return response
            response.close()
            time.sleep(_delay(attempt, response))
        raise AssertionError("unreachable")
