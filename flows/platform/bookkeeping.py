"""What every workflow run does around its steps: events, summary artifact, outcome report.

A ``WorkflowRun`` knows the run (flow-run id, attempt) and when it started. At the end it
records the workflow's domain event (control plane + Prefect event), leaves a markdown
artifact of what it did, and reports duration and retries to the control plane, which
turns them into ``workflow_run_duration_seconds`` and ``workflow_retries_total``.

Tracing: ``begin`` names the workflow and its aggregate on the flow run's span (Prefect
opens it; its name is the run name), and the outcome adds ``idp.result``,
``idp.retries`` and, on failure, ``idp.error.code``.

Attempts: ``prefect flow-run retry`` (or the UI's Retry) runs the same flow run again.
Each attempt records its own events and its own outcome, so from the second attempt on
event ids and the reported run key carry ``:<attempt>`` (the control plane keeps each
event id and each run key once, which also makes a task retry of the recording harmless).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from prefect.artifacts import acreate_markdown_artifact
from prefect.runtime import flow_run

from blocks.platform.control_plane import ControlPlane, event_id_for
from blocks.platform.domain import Aggregate, EventName, EventResult
from core.errors import DomainError, shorten
from core.telemetry import annotate
from tasks.platform.control_plane import (
    DomainEventSpec,
    WorkflowOutcome,
    record_domain_event,
    report_workflow_run,
)
from tasks.platform.policy import RETRIES

logger = logging.getLogger(__name__)
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


@dataclass
class WorkflowRun:
    workflow: str
    aggregate: Aggregate | None
    aggregate_id: str
    flow_run_id: str
    attempt: int
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def begin(cls, workflow: str, aggregate: Aggregate | None, aggregate_id: str) -> WorkflowRun:
        """Called first thing in a flow body (outside a run, ids are placeholders)."""
        run = cls(
            workflow=workflow,
            aggregate=aggregate,
            aggregate_id=aggregate_id,
            flow_run_id=str(flow_run.id or "local"),
            attempt=max(int(flow_run.run_count or 1), 1),
        )
        # The flow run's span: what ran on which aggregate (identifiers only).
        annotate(
            {
                "workflow": workflow,
                "aggregate": aggregate.value if aggregate else None,
                f"{aggregate.value if aggregate else 'aggregate'}_id": aggregate_id,
                "attempt": run.attempt,
            }
        )
        return run

    @property
    def run_key(self) -> str:
        """The flow-run id, with ``:<attempt>`` from the second attempt on."""
        return self.flow_run_id if self.attempt == 1 else f"{self.flow_run_id}:{self.attempt}"

    def reason(self, exc: BaseException) -> str:
        return error_text(exc)

    def event(
        self,
        name: EventName,
        *,
        result: EventResult = EventResult.SUCCESS,
        payload: Mapping[str, Any] | None = None,
        aggregate: Aggregate | None = None,
        aggregate_id: str | None = None,
    ) -> DomainEventSpec:
        aggregate = aggregate or self.aggregate
        if aggregate is None:
            raise ValueError(f"{self.workflow} events need an aggregate")
        aggregate_id = aggregate_id or self.aggregate_id
        return DomainEventSpec(
            id=event_id_for(self.run_key, name.value, aggregate_id),
            name=name,
            aggregate=aggregate,
            aggregate_id=aggregate_id,
            result=result,
            payload={"workflow": self.workflow, "attempt": self.attempt, **(payload or {})},
            flow_run_id=self.flow_run_id,
        )

    def failure_event(
        self, name: EventName, exc: BaseException, payload: Mapping[str, Any] | None = None
    ) -> DomainEventSpec:
        details = {"error_code": error_code(exc), "error": error_text(exc), **(payload or {})}
        return self.event(name, result=EventResult.ERROR, payload=details)

    def outcome(self, succeeded: bool) -> WorkflowOutcome:
        outcome = WorkflowOutcome(
            workflow=self.workflow,
            run_key=self.run_key,
            succeeded=succeeded,
            duration_seconds=round(time.monotonic() - self.started, 6),
            retries=RETRIES.pop(self.flow_run_id),
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

    async def succeed(
        self,
        control_plane: ControlPlane,
        event: DomainEventSpec | None,
        title: str,
        rows: Iterable[tuple[str, object]],
    ) -> None:
        """Completed: record the event, then report the outcome (the metrics count a run
        whose event is recorded); the summary artifact is written meanwhile."""

        async def record_then_report() -> None:
            if event is not None:
                await record_domain_event(control_plane, event)
            await self.report(control_plane, succeeded=True)

        outcomes = await asyncio.gather(
            self.publish_summary(title, [("result", "completed"), *rows]),
            record_then_report(),
            return_exceptions=True,
        )
        for outcome in outcomes:  # both finished; the first error, if any, fails the run
            if isinstance(outcome, BaseException):
                raise outcome

    async def report(self, control_plane: ControlPlane, *, succeeded: bool) -> None:
        """Duration and retries of this attempt, for the workflow metrics."""
        await report_workflow_run(control_plane, self.outcome(succeeded))

    async def fail(
        self,
        control_plane: ControlPlane,
        event: DomainEventSpec | None,
        exc: BaseException,
        title: str,
        rows: Iterable[tuple[str, object]] = (),
    ) -> None:
        """Failed: the same bookkeeping, best effort; the caller re-raises ``exc``."""
        annotate({"error.code": error_code(exc)})
        if event is not None:
            await best_effort(record_domain_event(control_plane, event), "recording the event")
        summary = [("result", "failed"), ("error", error_text(exc)), *rows]
        await best_effort(self.publish_summary(title, summary), "publishing the summary")
        await best_effort(self.report(control_plane, succeeded=False), "reporting the outcome")
