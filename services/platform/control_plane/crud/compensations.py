"""Persistence of the compensation log: entries recorded once per (flow run, key), listed
in recording order, settled (undone, or the attempt failed) until done.

Both writes are single statements: recording is ``INSERT ... ON CONFLICT DO NOTHING`` on
the unique (flow_run_id, key), so concurrent records of one key keep one row on SQLite and
PostgreSQL alike and neither rolls its transaction back; settling is ``UPDATE ... WHERE
done_at IS NULL``, so a done entry stays done whatever a late or concurrent attempt says.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from core.errors import Conflict, NotFound
from services.platform.control_plane.models import CompensationCreate, WorkflowCompensation
from services.platform.control_plane.models.common import utcnow

# The databases the service runs on, each with its spelling of "insert unless present".
_INSERTS: dict[str, Callable[..., Any]] = {
    "postgresql": postgresql.insert,
    "sqlite": sqlite.insert,
}


def _find(session: Session, flow_run_id: str, key: str) -> WorkflowCompensation | None:
    statement = select(WorkflowCompensation).where(
        col(WorkflowCompensation.flow_run_id) == flow_run_id,
        col(WorkflowCompensation.key) == key,
    )
    return session.exec(statement).first()


def record_compensation(
    *, session: Session, flow_run_id: str, data: CompensationCreate
) -> tuple[WorkflowCompensation, bool]:
    """Keep the entry unless the run has one with its key; returns (entry, created). A
    second record of a key changes nothing and returns the first entry as it is."""
    insert = _INSERTS[session.get_bind().dialect.name]
    statement = (
        insert(WorkflowCompensation)
        .values(
            id=uuid.uuid4(),
            flow_run_id=flow_run_id,
            key=data.key,
            step=data.step,
            undo=data.undo,
            arguments=data.arguments,
            recorded_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["flow_run_id", "key"])
    )
    created = session.execute(statement).rowcount == 1  # type: ignore[attr-defined]
    entry = _find(session, flow_run_id, data.key)
    if entry is None:  # inserted or there already; gone only if deleted meanwhile
        raise Conflict(
            f"compensation {data.key} of run {flow_run_id} changed meanwhile; try again",
            details={"flow_run_id": flow_run_id, "key": data.key},
        )
    return entry, created


def list_compensations(*, session: Session, flow_run_id: str) -> list[WorkflowCompensation]:
    """Every entry of the run, in recording order (none is not an error)."""
    rows = session.exec(
        select(WorkflowCompensation)
        .where(col(WorkflowCompensation.flow_run_id) == flow_run_id)
        .order_by(col(WorkflowCompensation.seq))
    ).all()
    return list(rows)


def get_compensation(
    *, session: Session, flow_run_id: str, entry_id: uuid.UUID
) -> WorkflowCompensation:
    """The entry, if it is one of the run's; ``NotFound`` otherwise."""
    entry = session.exec(
        select(WorkflowCompensation).where(
            col(WorkflowCompensation.id) == entry_id,
            col(WorkflowCompensation.flow_run_id) == flow_run_id,
        )
    ).first()
    if entry is None:
        raise NotFound(
            f"compensation {entry_id} of run {flow_run_id} does not exist",
            details={"id": str(entry_id), "flow_run_id": flow_run_id},
        )
    return entry


def settle_compensation(
    *, session: Session, flow_run_id: str, entry_id: uuid.UUID, error: str | None
) -> WorkflowCompensation:
    """Mark the entry undone (``error`` None: done, for good) or record why the attempt
    failed (not done). An entry already done is left as it is."""
    values: dict[str, Any] = {"error": error}
    if error is None:
        values["done_at"] = utcnow()
    session.execute(
        update(WorkflowCompensation)
        .where(
            col(WorkflowCompensation.id) == entry_id,
            col(WorkflowCompensation.flow_run_id) == flow_run_id,
            col(WorkflowCompensation.done_at).is_(None),
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    session.expire_all()
    return get_compensation(session=session, flow_run_id=flow_run_id, entry_id=entry_id)
