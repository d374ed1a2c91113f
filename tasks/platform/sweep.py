"""The rotation sweep's batch task: many rotations inside one task run.

One task run per secret would not scale: the SQLite Prefect server records ~17-19 task
runs per second and each async task run costs 10-60 ms of engine overhead
(research/prefect.md §18), so 1,000 secrets x 8 steps would take minutes of pure
bookkeeping. A batch task instead runs ``rotate_one`` for each of its secrets behind an
``asyncio.Semaphore`` (the sweep's ``max_concurrency``, so Harbor is never flooded) and a
thread ``CapacityLimiter`` of the same size for the sync block calls.

``rotate_one`` performs exactly the SecretRotation flow's steps, through the shared
functions of ``tasks.platform.rotation_steps``, with per-step retries in code (``retrying``, same
policies as the tasks). Every failure is caught per secret and becomes that secret's
outcome, so one secret never stops the others.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from enum import StrEnum
from typing import TypeVar

from prefect import task
from prefect.artifacts import aupdate_progress_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict, Field

from blocks.models import StoredSecret
from blocks.platform.control_plane import ControlPlane, SecretState
from blocks.platform.domain import Aggregate, EventName, EventResult, SecretStatus
from blocks.ports import RegistryProvider, SecretBackend
from core.errors import DomainError, SecretLocked, shorten
from tasks.platform import rotation_steps as steps
from tasks.platform.batch import Batch, SweepRun
from tasks.platform.control_plane import record_event
from tasks.platform.policy import CONTROL_PLANE, PROVIDER, RetryPolicy, retrying

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Progress artifact updates cost an API call each; at most one per interval per batch.
PROGRESS_INTERVAL_SECONDS = 1.0


class RotationOutcome(StrEnum):
    ROTATED = "rotated"
    FAILED = "failed"
    SKIPPED = "skipped"  # another run holds the secret's lock


class SweepItem(BaseModel):
    """One secret's outcome in a sweep."""

    model_config = ConfigDict(frozen=True)

    secret_id: str
    outcome: RotationOutcome
    status: SecretStatus | None = Field(None, description="Secret status the rotation left")
    stored_version: int | None = None
    bindings: int = 0
    error_code: str | None = None
    error: str | None = Field(None, description="Short message; never a secret value")
    retries: int = 0


class SweepProgress(BaseModel):
    model_config = ConfigDict(frozen=True)

    artifact_id: uuid.UUID
    done_before: int = Field(ge=0, description="Secrets finished by earlier batches")
    total: int = Field(ge=1)


class _Batch(Batch):
    """What every rotation of a batch shares: blocks, run identity, limits."""

    aggregate = Aggregate.SECRET

    def __init__(
        self,
        control_plane: ControlPlane,
        registry: RegistryProvider,
        backend: SecretBackend,
        run: SweepRun,
        max_concurrency: int,
    ) -> None:
        super().__init__(control_plane, run, max_concurrency)
        self.registry = registry
        self.backend = backend

    async def rotate_one(self, secret: SecretState) -> SweepItem:
        """The SecretRotation steps for one secret; never raises."""
        item, retries, _ = await self.bounded(secret.id, lambda key: self._rotate(secret, key))
        return item.model_copy(update={"retries": retries})

    async def _rotate(self, secret: SecretState, key: str) -> SweepItem:
        """The SecretRotation flow's steps, in its order, each retried in code."""
        cp, reg, be, lim = self.control_plane, self.registry, self.backend, self.limiter
        sid, holder = secret.id, self.run.flow_run_id

        def step(policy: RetryPolicy, call: Callable[[], Awaitable[T]]) -> Awaitable[T]:
            return retrying(policy, call, flow_run_id=key)

        rotating, stored = False, None
        try:
            steps.check_rotatable(secret)
            await step(CONTROL_PLANE, lambda: steps.lock_secret(cp, sid, holder, limiter=lim))
            await step(CONTROL_PLANE, lambda: steps.mark_rotating(cp, sid, holder, limiter=lim))
            rotating = True
            started = self.event(EventName.SECRET_ROTATION_STARTED, sid, EventResult.SUCCESS, {})
            await step(CONTROL_PLANE, lambda: record_event(cp, started, limiter=lim))
            ref, project = secret.provider_ref, secret.project
            robot = await step(PROVIDER, lambda: steps.find_robot(reg, ref, project, limiter=lim))
            stored = new = await step(
                steps.ROTATION,
                lambda: steps.rotate_and_store(reg, be, sid, robot, limiter=lim, flow_run_id=key),
            )
            bindings = await step(
                PROVIDER,
                lambda: steps.update_bindings(
                    be, sid, new, secret.bindings, secret.stored, limiter=lim
                ),
            )
            await step(CONTROL_PLANE, lambda: steps.mark_rotated(cp, sid, holder, new, limiter=lim))
            await step(CONTROL_PLANE, lambda: steps.unlock_secret(cp, sid, holder, limiter=lim))
            facts = {"robot": robot.name, "stored_version": new.version, "bindings": len(bindings)}
            done = self.event(EventName.SECRET_ROTATION_COMPLETED, sid, EventResult.SUCCESS, facts)
            await step(CONTROL_PLANE, lambda: record_event(cp, done, limiter=lim))
        except Exception as exc:
            return await self._failed(secret, key, exc, rotating=rotating, stored=stored)
        return SweepItem(
            secret_id=sid,
            outcome=RotationOutcome.ROTATED,
            status=SecretStatus.ACTIVE,
            stored_version=new.version,
            bindings=len(bindings),
        )

    async def _failed(
        self,
        secret: SecretState,
        key: str,
        exc: Exception,
        *,
        rotating: bool,
        stored: StoredSecret | None,
    ) -> SweepItem:
        cp, holder, lim = self.control_plane, self.run.flow_run_id, self.limiter
        code = exc.code if isinstance(exc, DomainError) else "internal_error"
        message = shorten(str(exc), 200) if isinstance(exc, DomainError) else type(exc).__name__
        if isinstance(exc, SecretLocked):
            # Another run is rotating it: not this sweep's failure, and not its lock.
            return SweepItem(
                secret_id=secret.id,
                outcome=RotationOutcome.SKIPPED,
                status=secret.status,
                error_code=code,
                error=message,
            )
        status = await steps.settle_failed_rotation(
            cp,
            secret.id,
            holder,
            rotating=rotating,
            stored=stored,
            exc=exc,
            limiter=lim,
            flow_run_id=key,
        )
        payload: dict[str, object] = {"error_code": code, "error": message}
        if status is not None:
            payload["secret_status"] = status.value
        failed = self.event(EventName.SECRET_ROTATION_FAILED, secret.id, EventResult.ERROR, payload)
        try:
            await retrying(
                CONTROL_PLANE, lambda: record_event(cp, failed, limiter=lim), flow_run_id=key
            )
        except Exception as record_exc:  # the outcome below still tells what happened
            logger.warning("could not record the failure of %s: %s", secret.id, record_exc)
        return SweepItem(
            secret_id=secret.id,
            outcome=RotationOutcome.FAILED,
            status=status or secret.status,
            stored_version=stored.version if stored else None,
            error_code=code,
            error=message,
        )


class _Progress:
    """Throttled progress-artifact updates for one batch."""

    def __init__(self, spec: SweepProgress | None) -> None:
        self.spec = spec
        self.done = 0
        self.last = 0.0

    async def tick(self, force: bool = False) -> None:
        self.done += 0 if force else 1
        spec = self.spec
        now = time.monotonic()
        if spec is None or (not force and now - self.last < PROGRESS_INTERVAL_SECONDS):
            return
        self.last = now
        percent = min(100.0, 100.0 * (spec.done_before + self.done) / spec.total)
        try:
            await aupdate_progress_artifact(artifact_id=spec.artifact_id, progress=percent)
        except Exception as exc:  # progress is cosmetic: never fail rotations over it
            logger.warning("progress update failed: %s", type(exc).__name__)


@task(
    name="RotateSecretBatch",
    task_run_name="RotateSecretBatch[{label}]",
    persist_result=True,
    cache_policy=NO_CACHE,
)
async def rotate_secret_batch(
    control_plane: ControlPlane,
    registry: RegistryProvider,
    backend: SecretBackend,
    secrets: Sequence[SecretState],
    run: SweepRun,
    max_concurrency: int,
    label: str,
    progress: SweepProgress | None = None,
) -> list[SweepItem]:
    """Rotate each secret (at most ``max_concurrency`` at once); one outcome per secret."""
    batch = _Batch(control_plane, registry, backend, run, max_concurrency)
    tracker = _Progress(progress)

    async def one(secret: SecretState) -> SweepItem:
        item = await batch.rotate_one(secret)
        await tracker.tick()
        return item

    items = await asyncio.gather(*(one(s) for s in secrets))
    await tracker.tick(force=True)
    return list(items)
