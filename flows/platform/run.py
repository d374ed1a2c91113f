"""A platform workflow's run: the engine's driver plus the platform's bookkeeping.

``PlatformRun.open`` loads the run's blocks by role, opens the engine's ``StepRun`` (its
undo actions recorded in the control plane, ``tasks/platform/compensation.py``) and knows
the run (flow-run id, attempt, start time). A flow body then reads as its steps:
``await run(STEP, ...)``. At the end ``succeed`` or ``fail`` records the workflow's domain
event (control plane + Prefect event), leaves a markdown artifact of what it did and
reports duration and retries to the control plane (``workflow_run_duration_seconds``,
``workflow_retries_total``); ``fail`` is best effort, so the error that matters is the one
the flow raises.

Attempts: ``prefect flow-run retry`` (or the UI's Retry) runs the same flow run again.
Each attempt records its own events and its own outcome, so from the second attempt on
event ids and the reported run key carry ``:<attempt>`` (the control plane keeps each
event id and each run key once, which also makes a retried recording harmless).

Tracing: the flow run's span names the workflow and its aggregate, and the outcome adds
``idp.result``, ``idp.retries`` and, on failure, ``idp.error.code``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Iterable, Mapping
from typing import Any, ParamSpec, TypeVar

from prefect.artifacts import acreate_markdown_artifact

from blocks.platform.control_plane import event_id_for
from blocks.platform.domain import Aggregate, EventName, EventResult
from core.errors import DomainError, shorten
from core.steps import Step, StepRun, UndoOutcome
from core.telemetry import annotate
from flows.platform.roles import Roles, load_roles
from tasks.platform.compensation import ControlPlaneCompensationLog
from tasks.platform.control_plane import (
    RECORD_DOMAIN_EVENT,
    REPORT_WORKFLOW_RUN,
    DomainEventSpec,
    WorkflowOutcome,
)

logger = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


def error_code(exc: BaseException) -> str:
    """The stable code of an error (``internal_error`` for a bug that is not a domain error)."""
    return exc.code if isinstance(exc, DomainError) else "internal_error"


def error_text(exc: BaseException) -> str:
    """A short, secret-free description: domain messages are built from codes and statuses;
    anything else is a bug whose message we do not trust, so only its type is shown."""
    if isinstance(exc, DomainError):
        return shorten(str(exc), 200)
    return f"[internal_error] {type(exc).__name__}"


def artifact_key(*parts: str) -> str:
    """Artifact keys are lowercase letters, digits and dashes."""
    text = "-".join(re.sub(r"(?<!^)(?=[A-Z])", "-", p).lower() for p in parts)
    return re.sub(r"[^a-z0-9-]+", "-", text).strip("-")


def markdown_table(rows: Iterable[tuple[str, object]]) -> str:
    lines = ["| | |", "|---|---|"]
    lines += [f"| {name} | {str(value).replace('|', '/')} |" for name, value in rows]
    return "\n".join(lines)


async def best_effort(step: Awaitable[T], what: str) -> T | None:
    """Await a bookkeeping step of a failing run; log instead of masking the real error."""
    try:
        return await step
    except Exception as exc:
        logger.warning("%s failed: %s", what, error_text(exc))
        return None


def event_spec(
    run_key: str,
    workflow: str,
    name: EventName,
    aggregate: Aggregate,
    aggregate_id: str,
    *,
    flow_run_id: str,
    result: EventResult = EventResult.SUCCESS,
    payload: Mapping[str, Any] | None = None,
) -> DomainEventSpec:
    """An event of run ``run_key``; its id is stable across retries of the recording."""
    return DomainEventSpec(
        id=event_id_for(run_key, name.value, aggregate_id),
        name=name,
        aggregate=aggregate,
        aggregate_id=aggregate_id,
        result=result,
        payload={"workflow": workflow, **(payload or {})},
        flow_run_id=flow_run_id,
    )


def failure_payload(exc: BaseException, payload: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {"error_code": error_code(exc), "error": error_text(exc), **(payload or {})}


class PlatformRun:
    """One run of a platform workflow (see the module docstring)."""

    def __init__(
        self,
        workflow: str,
        aggregate: Aggregate | None,
        aggregate_id: str,
        roles: Roles,
        steps: StepRun,
    ) -> None:
        self.workflow = workflow
        self.aggregate = aggregate
        self.aggregate_id = aggregate_id
        self.roles = roles
        self.steps = steps
        self.started = time.monotonic()

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        workflow: str,
        aggregate: Aggregate | None,
        aggregate_id: str,
        *,
        roles: Iterable[str],
        steps: Iterable[Step[..., Any]],
        compensable: bool = False,
    ) -> AsyncIterator[PlatformRun]:
        """Load the roles' blocks and open the run's steps (first thing in a flow body);
        a ``compensable`` run records its undo actions in the control plane."""
        loaded = await load_roles(*roles)
        log = ControlPlaneCompensationLog(loaded.control_plane) if compensable else None
        async with StepRun.open(steps=steps, resources=loaded.resources(), log=log) as step_run:
            run = cls(workflow, aggregate, aggregate_id, loaded, step_run)
            annotate(
                {
                    "workflow": workflow,
                    "aggregate": aggregate.value if aggregate else None,
                    f"{aggregate.value if aggregate else 'aggregate'}_id": aggregate_id,
                    "attempt": step_run.attempt,
                }
            )
            yield run

    # ---- identity --------------------------------------------------------------------
    @property
    def flow_run_id(self) -> str:
        return self.steps.run_id

    @property
    def attempt(self) -> int:
        return self.steps.attempt

    @property
    def run_key(self) -> str:
        """The flow-run id, with ``:<attempt>`` from the second attempt on."""
        return self.flow_run_id if self.attempt == 1 else f"{self.flow_run_id}:{self.attempt}"

    # ---- steps -----------------------------------------------------------------------
    def __call__(self, step: Step[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Awaitable[R]:
        return self.steps(step, *args, **kwargs)

    async def compensate(self) -> list[UndoOutcome]:
        """Undo what this run created (every attempt's), newest first."""
        return await self.steps.compensate()

    # ---- bookkeeping -----------------------------------------------------------------
    def event(
        self,
        name: EventName,
        *,
        result: EventResult = EventResult.SUCCESS,
        payload: Mapping[str, Any] | None = None,
    ) -> DomainEventSpec:
        if self.aggregate is None:
            raise ValueError(f"{self.workflow} events need an aggregate")
        return event_spec(
            self.run_key,
            self.workflow,
            name,
            self.aggregate,
            self.aggregate_id,
            flow_run_id=self.flow_run_id,
            result=result,
            payload={"attempt": self.attempt, **(payload or {})},
        )

    def failure_event(
        self, name: EventName, exc: BaseException, payload: Mapping[str, Any] | None = None
    ) -> DomainEventSpec:
        return self.event(name, result=EventResult.ERROR, payload=failure_payload(exc, payload))

    def outcome(self, succeeded: bool, retries: int | None = None) -> WorkflowOutcome:
        outcome = WorkflowOutcome(
            workflow=self.workflow,
            run_key=self.run_key,
            succeeded=succeeded,
            duration_seconds=round(time.monotonic() - self.started, 6),
            retries=self.steps.stats.retries if retries is None else retries,
        )
        annotate({"result": "success" if succeeded else "failure", "retries": outcome.retries})
        return outcome

    async def publish_summary(self, title: str, rows: Iterable[tuple[str, object]]) -> None:
        """The run's markdown artifact: what it did, never a secret value."""
        body = f"# {title}\n\n{markdown_table(rows)}\n"
        await acreate_markdown_artifact(
            markdown=body,
            key=artifact_key(self.workflow, self.aggregate_id),
            description=f"{self.workflow} {self.aggregate_id}",
        )

    async def report(self, *, succeeded: bool, retries: int | None = None) -> None:
        """Duration and retries of this attempt, for the workflow metrics."""
        await self(REPORT_WORKFLOW_RUN, self.roles.control_plane, self.outcome(succeeded, retries))

    async def succeed(
        self,
        event: DomainEventSpec | None,
        title: str,
        rows: Iterable[tuple[str, object]],
        *,
        retries: int | None = None,
    ) -> None:
        """Completed: record the event, then report the outcome (the metrics count a run
        whose event is recorded); the summary artifact is written meanwhile."""

        async def record_then_report() -> None:
            if event is not None:
                await self(RECORD_DOMAIN_EVENT, self.roles.control_plane, event)
            await self.report(succeeded=True, retries=retries)

        outcomes = await asyncio.gather(
            self.publish_summary(title, [("result", "completed"), *rows]),
            record_then_report(),
            return_exceptions=True,
        )
        for outcome in outcomes:  # both finished; the first error, if any, fails the run
            if isinstance(outcome, BaseException):
                raise outcome

    async def fail(
        self,
        event: DomainEventSpec | None,
        exc: BaseException,
        title: str,
        rows: Iterable[tuple[str, object]] = (),
    ) -> None:
        """Failed: the same bookkeeping, best effort; the caller re-raises ``exc``."""
        annotate({"error.code": error_code(exc)})
        if event is not None:
            await best_effort(
                self(RECORD_DOMAIN_EVENT, self.roles.control_plane, event), "recording the event"
            )
        summary = [("result", "failed"), ("error", error_text(exc)), *rows]
        await best_effort(self.publish_summary(title, summary), "publishing the summary")
        await best_effort(self.report(succeeded=False), "reporting the outcome")
