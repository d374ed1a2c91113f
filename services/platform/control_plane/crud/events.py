"""Persistence of the domain event log (idempotent by event id) and of workflow-run
outcomes (idempotent by flow run id). Metrics move only when the insert commits."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from blocks.platform.domain import Aggregate, EventResult
from services.platform.control_plane.db import call_after_commit
from services.platform.control_plane.metrics import ControlPlaneMetrics
from services.platform.control_plane.models import (
    DomainEvent,
    DomainEventCreate,
    WorkflowRun,
    WorkflowRunReport,
)
from services.platform.control_plane.models.common import utcnow


def _find_event(session: Session, event_id: uuid.UUID) -> DomainEvent | None:
    return session.exec(select(DomainEvent).where(DomainEvent.id == event_id)).first()


def record_event(
    *, session: Session, data: DomainEventCreate, metrics: ControlPlaneMetrics
) -> tuple[DomainEvent, bool]:
    """Insert the event unless its id exists; returns (event, created).

    On a concurrent duplicate the caller's transaction is rolled back, so call this as
    the only write of its transaction (the internal events endpoint does).
    """
    existing = _find_event(session, data.id)
    if existing is not None:
        return existing, False
    event = DomainEvent.model_validate(
        data.model_dump(exclude={"occurred_at"}),
        update={"occurred_at": data.occurred_at or utcnow()},
    )
    session.add(event)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        found = _find_event(session, data.id)
        if found is None:
            raise
        return found, False
    call_after_commit(session, lambda: metrics.count_event(event.name, event.result))
    return event, True


def add_event(
    *,
    session: Session,
    metrics: ControlPlaneMetrics,
    name: str,
    aggregate: Aggregate,
    aggregate_id: str,
    payload: dict[str, Any] | None = None,
    flow_run_id: str | None = None,
    result: EventResult = EventResult.SUCCESS,
) -> DomainEvent:
    """Append an event written by a command (a fresh id, in the command's transaction)."""
    data = DomainEventCreate(
        name=name,
        aggregate=aggregate,
        aggregate_id=aggregate_id,
        result=result,
        payload=payload or {},
        flow_run_id=flow_run_id,
    )
    event = DomainEvent.model_validate(data.model_dump(), update={"occurred_at": utcnow()})
    session.add(event)
    call_after_commit(session, lambda: metrics.count_event(name, result))
    return event


def list_events(
    *,
    session: Session,
    aggregate: Aggregate | None,
    aggregate_id: str | None,
    name: str | None,
    limit: int,
    offset: int,
) -> tuple[list[DomainEvent], int]:
    """Events matching every given filter, newest first."""
    conditions = []
    if aggregate is not None:
        conditions.append(col(DomainEvent.aggregate) == aggregate.value)
    if aggregate_id is not None:
        conditions.append(col(DomainEvent.aggregate_id) == aggregate_id)
    if name is not None:
        conditions.append(col(DomainEvent.name) == name)
    total = session.exec(select(func.count()).select_from(DomainEvent).where(*conditions)).one()
    rows = session.exec(
        select(DomainEvent)
        .where(*conditions)
        .order_by(col(DomainEvent.occurred_at).desc(), col(DomainEvent.seq).desc())
        .offset(offset)
        .limit(limit)
    ).all()
    return list(rows), total


def report_run(
    *, session: Session, report: WorkflowRunReport, metrics: ControlPlaneMetrics
) -> tuple[WorkflowRun, bool]:
    """Record a run's outcome once per flow run id; returns (run, created)."""
    existing = session.get(WorkflowRun, report.flow_run_id)
    if existing is not None:
        return existing, False
    run = WorkflowRun.model_validate(report.model_dump())
    session.add(run)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        found = session.get(WorkflowRun, report.flow_run_id)
        if found is None:
            raise
        return found, False
    call_after_commit(
        session,
        lambda: metrics.observe_run(
            report.workflow, report.result.value, report.duration_seconds, report.retries
        ),
    )
    return run, True
