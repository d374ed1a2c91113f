"""The bulk provisioning batch task: many ApplicationEnvironmentProvisioning runs in one task.

Why not one flow run per environment: each flow run is a new process on the worker
(~5 s to start, ~150-200 MB each), so 100 environments at concurrency 20 would need GBs
on the worker; and why not one task run per step: the SQLite Prefect server records
~17-19 task runs per second (research/prefect.md §18), 500 environments x 8 steps would
take minutes of bookkeeping. A batch task instead runs ``provision_one`` per environment
behind an ``asyncio.Semaphore`` and a thread ``CapacityLimiter`` of the run's
``max_concurrency`` (the sync blocks run in threads), as the rotation sweep does.

``provision_one`` performs exactly the ApplicationEnvironmentProvisioning steps, through
the shared functions of ``tasks.platform.provisioning_steps``, with per-step retries in code
(``retrying``, same policies as the tasks) and the same failure handling: an environment
that was marked ``provisioning`` and then failed is marked ``provisioning_failed`` and gets
its ``workflow_appenv_provisioning_failed`` event. One environment never stops another.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from enum import StrEnum
from typing import TypeVar

from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict, Field

from blocks.platform.control_plane import ControlPlane
from blocks.platform.domain import (
    Aggregate,
    EnvironmentStatus,
    EventName,
    EventResult,
    check_transition,
)
from blocks.ports import GitProvider, SecretBackend
from core.errors import DomainError, shorten
from tasks.platform import provisioning_steps as steps
from tasks.platform.batch import Batch, SweepRun
from tasks.platform.control_plane import record_event
from tasks.platform.policy import CONTROL_PLANE, PROVIDER, RetryPolicy, in_limited_thread, retrying

logger = logging.getLogger(__name__)
T = TypeVar("T")

REQUIRED_APPROVING_REVIEWS = 1


class ProvisioningOutcome(StrEnum):
    PROVISIONED = "provisioned"
    FAILED = "failed"


class ProvisioningItem(BaseModel):
    """One environment's outcome in a bulk run."""

    model_config = ConfigDict(frozen=True)

    environment_id: str
    outcome: ProvisioningOutcome
    status: EnvironmentStatus | None = Field(None, description="Status the run left")
    repository: str | None = Field(None, description="Full name of the repository")
    secrets: int = 0
    bindings: int = 0
    error_code: str | None = None
    error: str | None = Field(None, description="Short message; never a secret value")
    retries: int = 0
    duration_seconds: float = Field(0.0, ge=0, description="From its first step to its last")


class _Batch(Batch):
    """What every environment of a batch shares: blocks, run identity, limits."""

    aggregate = Aggregate.ENVIRONMENT

    def __init__(
        self,
        control_plane: ControlPlane,
        git: GitProvider,
        backend: SecretBackend,
        run: SweepRun,
        max_concurrency: int,
    ) -> None:
        super().__init__(control_plane, run, max_concurrency)
        self.git = git
        self.backend = backend

    async def provision_one(self, env_id: str) -> ProvisioningItem:
        """The provisioning steps for one environment; never raises."""
        item, retries, duration = await self.bounded(
            env_id, lambda key: self._provision(env_id, key)
        )
        return item.model_copy(update={"retries": retries, "duration_seconds": duration})

    async def _provision(self, env_id: str, key: str) -> ProvisioningItem:
        """The ApplicationEnvironmentProvisioning flow's steps, in its order."""
        cp, git, be, lim = self.control_plane, self.git, self.backend, self.limiter
        holder = self.run.flow_run_id

        def step(policy: RetryPolicy, call: Callable[[], Awaitable[T]]) -> Awaitable[T]:
            return retrying(policy, call, flow_run_id=key)

        def mark(status: EnvironmentStatus, reason: str | None = None) -> Awaitable[object]:
            return in_limited_thread(
                lim, cp.transition_environment, env_id, status, flow_run_id=holder, reason=reason
            )

        marked = False
        try:
            env = await step(
                CONTROL_PLANE, lambda: in_limited_thread(lim, cp.get_environment, env_id)
            )
            check_transition(env.status, EnvironmentStatus.PROVISIONING)
            await step(CONTROL_PLANE, lambda: mark(EnvironmentStatus.PROVISIONING))
            marked = True
            description = f"Environment {env_id}"
            repo = await step(
                PROVIDER,
                lambda: steps.ensure_repository(git, env.repository, description, limiter=lim),
            )
            await step(
                PROVIDER,
                lambda: steps.ensure_branch_protection(
                    git,
                    repo.name,
                    REQUIRED_APPROVING_REVIEWS,
                    branch=repo.default_branch,
                    limiter=lim,
                ),
            )
            app_id, names = env.application_id, env.secrets
            stored = await step(
                PROVIDER,
                lambda: steps.provision_secrets(be, env_id, app_id, names, limiter=lim),
            )
            bindings = await step(
                PROVIDER, lambda: steps.ensure_secret_bindings(be, env_id, names, limiter=lim)
            )
            await step(
                PROVIDER,
                lambda: steps.verify_gitops_reconciliation(be, env_id, repo.name, limiter=lim),
            )
            await step(CONTROL_PLANE, lambda: mark(EnvironmentStatus.PROVISIONED))
            facts = {
                "application_id": app_id,
                "repository": repo.full_name,
                "secrets": len(stored),
                "bindings": len(bindings),
            }
            done = self.event(
                EventName.APPENV_PROVISIONING_COMPLETED, env_id, EventResult.SUCCESS, facts
            )
            await step(CONTROL_PLANE, lambda: record_event(cp, done, limiter=lim))
        except Exception as exc:
            return await self._failed(env_id, key, exc, marked=marked)
        return ProvisioningItem(
            environment_id=env_id,
            outcome=ProvisioningOutcome.PROVISIONED,
            status=EnvironmentStatus.PROVISIONED,
            repository=repo.full_name,
            secrets=len(stored),
            bindings=len(bindings),
        )

    async def _failed(
        self, env_id: str, key: str, exc: Exception, *, marked: bool
    ) -> ProvisioningItem:
        """Record the truthful state (best effort) and turn the error into the outcome."""
        cp, lim, holder = self.control_plane, self.limiter, self.run.flow_run_id
        code = exc.code if isinstance(exc, DomainError) else "internal_error"
        message = shorten(str(exc), 200) if isinstance(exc, DomainError) else type(exc).__name__
        status: EnvironmentStatus | None = None
        if marked:
            failed = EnvironmentStatus.PROVISIONING_FAILED
            try:
                await retrying(
                    CONTROL_PLANE,
                    lambda: in_limited_thread(
                        lim,
                        cp.transition_environment,
                        env_id,
                        failed,
                        flow_run_id=holder,
                        reason=message,
                    ),
                    flow_run_id=key,
                )
                status = failed
            except Exception as mark_exc:
                logger.warning("could not mark %s %s: %s", env_id, failed, type(mark_exc).__name__)
        payload: dict[str, object] = {"error_code": code, "error": message}
        event = self.event(EventName.APPENV_PROVISIONING_FAILED, env_id, EventResult.ERROR, payload)
        try:
            await retrying(
                CONTROL_PLANE, lambda: record_event(cp, event, limiter=lim), flow_run_id=key
            )
        except Exception as record_exc:  # the outcome below still tells what happened
            logger.warning("could not record the failure of %s: %s", env_id, record_exc)
        return ProvisioningItem(
            environment_id=env_id,
            outcome=ProvisioningOutcome.FAILED,
            status=status,
            error_code=code,
            error=message,
        )


@task(
    name="ProvisionEnvironmentBatch",
    task_run_name="ProvisionEnvironmentBatch[{label}]",
    persist_result=True,
    cache_policy=NO_CACHE,
)
async def provision_environment_batch(
    control_plane: ControlPlane,
    git: GitProvider,
    backend: SecretBackend,
    environment_ids: Sequence[str],
    run: SweepRun,
    max_concurrency: int,
    label: str,
) -> list[ProvisioningItem]:
    """Provision each environment (at most ``max_concurrency`` at once); one outcome each."""
    batch = _Batch(control_plane, git, backend, run, max_concurrency)
    items = await asyncio.gather(*(batch.provision_one(e) for e in environment_ids))
    return list(items)
