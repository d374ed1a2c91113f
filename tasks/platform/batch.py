"""What the batch tasks share (``tasks.platform.sweep``,
``tasks.platform.bulk_provisioning``): who runs the batch, how many items are in flight,
each item's retry count and its domain events.

Items run behind an ``asyncio.Semaphore`` and a thread ``CapacityLimiter`` of the run's
``max_concurrency`` (the sync blocks run in threads). Each item's steps count their retries
under the key ``<flow run id>:<item id>``; ``bounded`` moves that count into the item's
outcome and adds it to the run's, which the run reports for ``workflow_retries_total``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import ClassVar, TypeVar

import anyio
from pydantic import BaseModel, ConfigDict, Field

from blocks.platform.control_plane import ControlPlane, event_id_for
from blocks.platform.domain import Aggregate, EventName, EventResult
from tasks.platform.control_plane import DomainEventSpec
from tasks.platform.policy import RETRIES

I = TypeVar("I")  # noqa: E741  (an item's outcome)


class SweepRun(BaseModel):
    """Who is sweeping: the lock holder and the key of its events."""

    model_config = ConfigDict(frozen=True)

    flow_run_id: str
    run_key: str = Field(description="Flow-run id, ':<attempt>' from the second attempt on")
    workflow: str


class Batch:
    """What every item of a batch shares: the control plane, run identity, limits."""

    aggregate: ClassVar[Aggregate]  # what the items are

    def __init__(self, control_plane: ControlPlane, run: SweepRun, max_concurrency: int) -> None:
        self.control_plane = control_plane
        self.run = run
        self.semaphore = asyncio.Semaphore(max_concurrency)
        self.limiter = anyio.CapacityLimiter(max_concurrency)

    def event(
        self, name: EventName, item_id: str, result: EventResult, payload: dict[str, object]
    ) -> DomainEventSpec:
        return DomainEventSpec(
            id=event_id_for(self.run.run_key, name.value, item_id),
            name=name,
            aggregate=self.aggregate,
            aggregate_id=item_id,
            result=result,
            payload={"workflow": self.run.workflow, **payload},
            flow_run_id=self.run.flow_run_id,
        )

    async def bounded(
        self, item_id: str, steps: Callable[[str], Awaitable[I]]
    ) -> tuple[I, int, float]:
        """Run one item's ``steps`` (given its retry-count key) once a slot is free; the
        outcome, its retries and its seconds from first step to last."""
        async with self.semaphore:
            key = f"{self.run.flow_run_id}:{item_id}"
            started = time.monotonic()
            outcome = await steps(key)
            retries = RETRIES.pop(key)
            RETRIES.add(self.run.flow_run_id, retries)
            return outcome, retries, round(time.monotonic() - started, 6)
