"""The batch driver: the same steps for N items, at most C in flight, in one flow run.

    batch = Batch("ProvisionEnvironment", max_concurrency=20, policy=PROVIDER)
    outcomes = await batch.run(ids, item_id=str, body=provision, progress_key="bulk-progress")

Each item is one Prefect task run (``ProvisionEnvironment[payments-dev]``), retried by
Prefect with the batch's policy; its body is the workflow's own step list (the function
the single-run flow runs), with each step run inline by an ``ItemRun``. So a batch of
500 environments is 500 task runs, not 500 x 9: Prefect's task engine costs ~4 ms and
its server records ~40-70 task runs/s on PostgreSQL (measured, docs/architecture.md),
which one task per step would turn into minutes of bookkeeping. An item retried by
Prefect runs its steps again from the first; every step is an *ensure*, so that is safe,
and an item's bookkeeping can wait for its final attempt (``will_retry``).

A retried batch run runs every item again (items are not persisted: see ``_task``); each
item's steps are ensures, so an item that had succeeded adopts what it made. One item's
failure never stops another:
each item's outcome (its result, or its error code and message) is in the list returned,
in the order given. A progress artifact moves as items finish (at most once a second).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, ParamSpec, TypeVar

from opentelemetry import trace
from prefect import Task
from prefect.artifacts import acreate_progress_artifact, aupdate_progress_artifact
from prefect.cache_policies import NO_CACHE

from core.errors import DomainError, shorten
from core.steps.policy import RetryPolicy, RunStats, use_stats
from core.steps.step import _INLINE_STEP, Step

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")
O = TypeVar("O")  # noqa: E741 - an item's outcome
PROGRESS_INTERVAL_SECONDS = 1.0
tracer = trace.get_tracer(__name__)


class ItemRun:
    """Runs an item's steps inline, inside the item's task run (same step bodies, same
    undo records as the single-run driver)."""

    def __init__(self, item_id: str) -> None:
        self.item_id = item_id

    async def __call__(self, step: Step[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        # A span per step inside the item's task-run span (block calls nest below it).
        token = _INLINE_STEP.set(step.name)
        try:
            with tracer.start_as_current_span(
                step.name, attributes={"idp.step": step.name, "idp.item": self.item_id}
            ):
                return await step.body(*args, **kwargs)
        finally:
            _INLINE_STEP.reset(token)


@dataclass(frozen=True)
class ItemOutcome(Generic[O]):
    item_id: str
    ok: bool
    result: O | None
    error_code: str | None
    error: str | None
    retries: int
    seconds: float


class Batch(Generic[T, O]):
    """N items through ``body(run, item)``, bounded (see the module docstring)."""

    def __init__(
        self,
        name: str,
        body: Callable[[ItemRun, T], Awaitable[O]],
        *,
        policy: RetryPolicy,
        max_concurrency: int,
        item_id: Callable[[T], str] = str,
    ) -> None:
        self.name = name
        self.body = body
        self.policy = policy
        self.max_concurrency = max_concurrency
        self.item_id = item_id
        self.stats = RunStats()

    def _task(self) -> Task[..., Awaitable[O]]:
        body = self.body

        async def item(item_id: str, item: Any) -> O:
            return await body(ItemRun(item_id), item)

        item.__qualname__ = item.__name__ = f"{self.name}_item"
        # Not persisted: writing each item's result to the result storage costs ~15 ms of
        # path resolution and file I/O per item (measured), more than the item's own
        # engine cost. A retried batch run does every item again; each is an ensure.
        return Task(
            fn=item,
            name=self.name,
            task_run_name=f"{self.name}[{{item_id}}]",
            persist_result=False,
            cache_policy=NO_CACHE,
            **self.policy.task_options(),
        )

    async def run(
        self, items: Sequence[T], *, progress_key: str | None = None, description: str = ""
    ) -> list[ItemOutcome[O]]:
        task = self._task()
        semaphore = asyncio.Semaphore(self.max_concurrency)
        progress = _Progress(len(items))
        if progress_key is not None:
            progress.artifact_id = await acreate_progress_artifact(
                progress=0.0, key=progress_key, description=description or self.name
            )

        async def one(item: T) -> ItemOutcome[O]:
            item_id = self.item_id(item)
            stats = RunStats()  # this item's retries, counted by the retry condition
            async with semaphore:
                started = time.monotonic()
                with use_stats(stats):
                    try:
                        result = await task(item_id, item)
                        outcome = ItemOutcome(item_id, True, result, None, None, stats.retries, 0.0)
                    except Exception as exc:
                        code = exc.code if isinstance(exc, DomainError) else "internal_error"
                        text = shorten(str(exc)) if isinstance(exc, DomainError) else code
                        outcome = ItemOutcome(item_id, False, None, code, text, stats.retries, 0.0)
                seconds = round(time.monotonic() - started, 6)
            self.stats.retries += stats.retries
            await progress.advance()
            return ItemOutcome(
                outcome.item_id,
                outcome.ok,
                outcome.result,
                outcome.error_code,
                outcome.error,
                outcome.retries,
                seconds,
            )

        outcomes = list(await asyncio.gather(*(one(item) for item in items)))
        await progress.finish()
        return outcomes


class _Progress:
    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.artifact_id: Any = None
        self._last = 0.0

    async def advance(self) -> None:
        self.done += 1
        now = time.monotonic()
        if self.artifact_id is None or now - self._last < PROGRESS_INTERVAL_SECONDS:
            return
        self._last = now
        await aupdate_progress_artifact(
            artifact_id=self.artifact_id, progress=100.0 * self.done / max(self.total, 1)
        )

    async def finish(self) -> None:
        if self.artifact_id is not None:
            await aupdate_progress_artifact(artifact_id=self.artifact_id, progress=100.0)
