"""How a step retries: attempts, backoff with jitter, a timeout, transient errors only.

``RetryPolicy.task_options()`` is what a step's Prefect task is declared with, so
Prefect's own retry machinery is the one retry layer of every workflow:

- ``retries`` attempts after the first, ``retry_delay_seconds`` doubling from
  ``backoff_seconds`` with Prefect's jitter (``retry_jitter_factor``);
- ``retry_condition_fn=retry_if_transient``: only a transient ``core.errors`` error (or a
  timeout) is retried; a permanent one (401, 403, 404, 409 ...) fails the step at once.
  It counts the retry on the run or batch item that is running (``RunStats``) and passes
  a ``RateLimited`` error's ``Retry-After`` to the delay Prefect reads next, as a lower
  bound (the retry's AwaitingRetry state shows the wait the provider asked for);
- ``timeout_seconds`` per attempt (async steps are cancelled when it fires).

Backoff delays are multiplied by ``IDP_RETRY_DELAY_SCALE`` (read when a retry happens, so
a test can run the real policies with tiny delays).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from prefect.context import TaskRunContext
from pydantic import Field

from core.errors import RateLimited, is_retryable
from core.settings import EnvSettings

# Longest wait we accept from a Retry-After header before retrying anyway.
MAX_RETRY_AFTER_SECONDS = 600.0


class EngineSettings(EnvSettings):
    """The step engine's one knob (read at each retry; no cache, no I/O at import)."""

    IDP_RETRY_DELAY_SCALE: float = Field(
        1.0, ge=0, description="Multiplier of step retry delays (1 = production backoff)"
    )


def delay_scale() -> float:
    return EngineSettings().IDP_RETRY_DELAY_SCALE


@dataclass
class RunStats:
    """What the engine counts for the run (or batch item) that is running."""

    retries: int = 0


# The stats of the run or item whose steps are running (set by the drivers, per task:
# asyncio copies the context into every task it starts, so items never share one).
_STATS: contextvars.ContextVar[RunStats | None] = contextvars.ContextVar(
    "idp_step_stats", default=None
)


def current_stats() -> RunStats | None:
    return _STATS.get()


@contextlib.contextmanager
def use_stats(stats: RunStats) -> Iterator[RunStats]:
    """Count the retries of the steps run inside the block on ``stats``."""
    token = _STATS.set(stats)
    try:
        yield stats
    finally:
        _STATS.reset(token)


def is_transient(exc: BaseException | None) -> bool:
    """Worth another attempt: a transient domain error or a timeout."""
    return exc is not None and (is_retryable(exc) or isinstance(exc, TimeoutError))


def retry_after_of(exc: BaseException | None) -> float | None:
    if isinstance(exc, RateLimited) and exc.retry_after is not None:
        return min(max(exc.retry_after, 0.0), MAX_RETRY_AFTER_SECONDS)
    return None


def _exception(state: Any) -> BaseException | None:
    data = getattr(state, "data", None)
    return data if isinstance(data, BaseException) else None


async def retry_if_transient(task: Any, task_run: Any, state: Any) -> bool:
    """``retry_condition_fn`` of every step: Prefect calls it while retries are left."""
    exc = _exception(state)
    if not is_transient(exc):
        return False
    stats = current_stats()
    if stats is not None:
        stats.retries += 1
    # Prefect reads the retry's delay right after this returns, in the same context.
    _RETRY_AFTER.set(retry_after_of(exc))
    return True


def will_retry(exc: BaseException) -> bool:
    """Inside a step's body: will Prefect run this step again after ``exc``? (A failing
    batch item uses it to leave its bookkeeping to the final attempt.)"""
    ctx = TaskRunContext.get()
    if ctx is None or not is_transient(exc):
        return False
    attempts = int(ctx.task_run.run_count or 1)
    return attempts <= int(ctx.task.retries or 0)


# The Retry-After of the failure being retried (set by the retry condition, read by the
# delay Prefect computes next; both run in the step's own context).
_RETRY_AFTER: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "idp_retry_after", default=None
)


class ScaledDelays(list[float]):
    """Backoff delays scaled by ``IDP_RETRY_DELAY_SCALE`` when Prefect reads one (at the
    retry, not at decoration), and raised to the failure's ``Retry-After``. Prefect then
    applies its jitter (down to ``1 - jitter`` times the delay), so a Retry-After is
    divided by that factor to stay a lower bound."""

    def __init__(self, delays: Any, jitter: float) -> None:
        super().__init__(delays)
        self.jitter = jitter

    def __getitem__(self, index: Any) -> Any:
        base = super().__getitem__(index)
        if isinstance(index, slice):
            return base
        delay = float(base) * delay_scale()
        hint = _RETRY_AFTER.get()
        if hint is None:
            return delay
        _RETRY_AFTER.set(None)
        return max(delay, hint / max(1 - self.jitter, 0.1))


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts, backoff and timeout of one kind of call."""

    retries: int
    backoff_seconds: float
    timeout_seconds: float
    jitter: float = 0.5

    def delays(self) -> list[float]:
        return ScaledDelays((self.backoff_seconds * 2**n for n in range(self.retries)), self.jitter)

    def task_options(self) -> dict[str, Any]:
        """Keyword arguments of ``@task`` for a step with this policy."""
        return {
            "retries": self.retries,
            "retry_delay_seconds": self.delays(),
            "retry_jitter_factor": self.jitter,
            "retry_condition_fn": retry_if_transient,
            "timeout_seconds": self.timeout_seconds,
        }
