"""How workflow steps retry, time out and reach the (sync) blocks from async code.

One ``RetryPolicy`` drives both kinds of retry the workflows use:

- **task retries** (``policy.task_options()`` in the ``@task`` decorator): Prefect reruns the
  task; ``retry_if_transient`` lets only ``core.errors`` transient errors (and timeouts)
  through, so a permanent error (401, 403, 404, 409 ...) fails the task after one attempt;
- **in-code retries** (``retrying``): the sweep rotates hundreds of secrets inside a few
  batch tasks (one task run per secret would swamp the Prefect server, see
  research/prefect.md §18), so each item retries in code with the same policy.

Delays are ``backoff * 2**n`` seconds scaled by ``IDP_RETRY_DELAY_SCALE`` (read when a retry
happens, not at import, so tests run with tiny delays) with jitter; a ``RateLimited`` error's
``retry_after`` is honoured as a lower bound. Every retry is counted in ``RETRIES`` per
flow run, so a run can report how many it needed (``workflow_retries_total``).

Every block call goes through ``in_thread`` / ``in_limited_thread``, which is also where
steps are traced (``tasks/platform/tracing.py``).

Blocks are synchronous (PyGithub, httpx.Client, hvac) and the flows are async (an async flow
costs ~0.2 s less than a sync one per run, prefect.md §15), so block calls run in worker
threads via ``in_thread``. We use ``anyio.to_thread.run_sync`` with an explicit
``CapacityLimiter`` rather than ``asyncio.to_thread``: both cost ~0.1-0.2 ms per hop here
(measured, negligible next to an HTTP call), but the default executor behind
``asyncio.to_thread`` has only ``cpu + 4`` threads (6 on a 2-core box), which would silently
cap the sweep's ``max_concurrency``; a limiter sized by the caller keeps the bound explicit.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, ParamSpec, TypeVar

import anyio
import anyio.to_thread
from prefect.cache_policies import DEFAULT, NO_CACHE
from prefect.context import TaskRunContext

from core.errors import RateLimited, is_retryable
from core.settings import get_settings
from tasks.platform.tracing import traced_call

P = ParamSpec("P")
T = TypeVar("T")

# Longest wait we accept from a Retry-After header before retrying anyway.
MAX_RETRY_AFTER_SECONDS = 600.0


def is_transient(exc: BaseException) -> bool:
    """Worth another attempt: a transient domain error or a timeout of our own."""
    return is_retryable(exc) or isinstance(exc, TimeoutError)


def retry_after_of(exc: BaseException) -> float | None:
    if isinstance(exc, RateLimited) and exc.retry_after is not None:
        return min(max(exc.retry_after, 0.0), MAX_RETRY_AFTER_SECONDS)
    return None


class RetryLedger:
    """Retries per flow run (for the outcome report) and Retry-After hints per task run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._hints: dict[str, float] = {}

    def add(self, flow_run_id: object, n: int = 1) -> None:
        if flow_run_id is None:
            return
        with self._lock:
            key = str(flow_run_id)
            self._counts[key] = self._counts.get(key, 0) + n

    def count(self, flow_run_id: object) -> int:
        with self._lock:
            return self._counts.get(str(flow_run_id), 0)

    def pop(self, flow_run_id: object) -> int:
        with self._lock:
            return self._counts.pop(str(flow_run_id), 0)

    def hint(self, task_run_id: object, seconds: float) -> None:
        with self._lock:
            self._hints[str(task_run_id)] = seconds

    def take_hint(self, task_run_id: object) -> float | None:
        with self._lock:
            return self._hints.pop(str(task_run_id), None)


RETRIES = RetryLedger()


def delay_scale() -> float:
    return get_settings().IDP_RETRY_DELAY_SCALE


class ScaledDelays(list[float]):
    """Backoff delays that are scaled (and raised to a Retry-After) when Prefect reads them.

    Prefect computes ``retry_delay_seconds`` once, at decoration time; this list defers the
    scale to the moment of the retry, inside the task run's context. Prefect then applies
    its jitter (down to ``1 - jitter`` times the delay), so a Retry-After is divided by
    that factor to stay a lower bound.
    """

    def __init__(self, delays: list[float], jitter: float) -> None:
        super().__init__(delays)
        self.jitter = jitter

    def __getitem__(self, index: Any) -> Any:
        base = super().__getitem__(index)
        if isinstance(index, slice):
            return base
        delay = float(base) * delay_scale()
        ctx = TaskRunContext.get()
        hint = RETRIES.take_hint(ctx.task_run.id) if ctx is not None else None
        if hint is None:
            return delay
        return max(delay, hint / max(1 - self.jitter, 0.1))


def retry_if_transient(task: Any, task_run: Any, state: Any) -> bool:
    """``retry_condition_fn``: retry transient errors only; count each retry granted.

    Prefect calls it only while the task still has retries left.
    """
    exc = state.data if isinstance(state.data, BaseException) else None
    if exc is None or not is_transient(exc):
        return False
    RETRIES.add(task_run.flow_run_id)
    after = retry_after_of(exc)
    if after is not None:
        RETRIES.hint(task_run.id, after)
    return True


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts, backoff and timeout of one kind of call."""

    retries: int
    backoff_seconds: float
    timeout_seconds: float
    jitter: float = 0.5

    def base_delays(self) -> list[float]:
        return [self.backoff_seconds * 2**n for n in range(self.retries)]

    def task_options(self) -> dict[str, Any]:
        """Keyword arguments of ``@task`` for a step that makes one call of this kind."""
        return {
            "retries": self.retries,
            "retry_delay_seconds": ScaledDelays(self.base_delays(), self.jitter),
            "retry_jitter_factor": self.jitter,
            "retry_condition_fn": retry_if_transient,
            "timeout_seconds": self.timeout_seconds,
        }

    def delay_before(self, retry: int, exc: BaseException) -> float:
        """Seconds to wait before retry number ``retry`` (1-based) of an in-code retry."""
        base = self.backoff_seconds * 2 ** (retry - 1) * delay_scale()
        jittered = base * random.uniform(1 - self.jitter / 2, 1 + self.jitter / 2)
        after = retry_after_of(exc)
        return max(jittered, after) if after is not None else jittered


# Provider steps cache on their inputs within a flow run (a retried run skips them), never
# on the block they call (configuration holding a token). Parameter names are the contract.
PROVIDER_CACHE = DEFAULT - "git" - "backend" - "registry" - "control_plane"

# Calls to GitHub, Harbor and the secret backends: a few attempts over ~7.5 s of backoff.
PROVIDER = RetryPolicy(retries=4, backoff_seconds=0.5, timeout_seconds=60.0)
# Calls to the control plane: local and usually fast; a short backoff.
CONTROL_PLANE = RetryPolicy(retries=3, backoff_seconds=0.2, timeout_seconds=30.0)


async def in_thread(
    fn: Callable[P, T],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """Run a sync block call in a worker thread (default anyio limiter: 40 threads)."""
    with traced_call(fn, args, kwargs):
        return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs))


async def in_limited_thread(
    limiter: anyio.CapacityLimiter | None, fn: Callable[..., T], *args: Any, **kwargs: Any
) -> T:
    """``in_thread`` bounded by ``limiter`` (the sweep sizes it to its concurrency)."""
    with traced_call(fn, args, kwargs):
        return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs), limiter=limiter)


async def retrying(
    policy: RetryPolicy,
    fn: Callable[[], Awaitable[T]],
    *,
    flow_run_id: object = None,
) -> T:
    """Await ``fn()`` under ``policy``: a timeout per attempt, transient errors retried.

    The in-code twin of ``policy.task_options()``; retries are counted for ``flow_run_id``.
    """
    retry = 0
    while True:
        try:
            with anyio.fail_after(policy.timeout_seconds):
                return await fn()
        except Exception as exc:
            if retry >= policy.retries or not is_transient(exc):
                raise
            retry += 1
            RETRIES.add(flow_run_id)
            await anyio.sleep(policy.delay_before(retry, exc))


def provider_task(policy: RetryPolicy = PROVIDER) -> dict[str, Any]:
    """``@task`` options of a provider step: persisted, cached per flow run, retried."""
    return {"persist_result": True, "cache_policy": PROVIDER_CACHE, **policy.task_options()}


def state_task() -> dict[str, Any]:
    """``@task`` options of a control-plane step: persisted but never cached, because a
    retried flow run must read domain state again and move it back to "in progress"."""
    return {"persist_result": True, "cache_policy": NO_CACHE, **CONTROL_PLANE.task_options()}
