"""The one place where aggregate statuses change.

Rules come from ``blocks.platform.domain`` (transition tables + ``check_transition``); this module
applies them atomically: read the status, check the move, then ``UPDATE ... WHERE
status = <what was read>``. If another writer got there first the rowcount is 0 and the
move is checked again against the new status, so two workflows can never both win.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, or_, select, update
from sqlmodel import Session, col

from blocks.platform.domain import (
    ApplicationStatus,
    EnvironmentStatus,
    SecretStatus,
    check_transition,
)
from core.errors import Conflict, NotFound, SecretLocked
from services.platform.control_plane.models import Application, ApplicationEnvironment, Secret
from services.platform.control_plane.models.common import utcnow

Aggregate = type[Application] | type[ApplicationEnvironment] | type[Secret]
_STATUS: dict[Any, type[StrEnum]] = {
    Application: ApplicationStatus,
    ApplicationEnvironment: EnvironmentStatus,
    Secret: SecretStatus,
}
_ATTEMPTS = 5


def transition(
    *,
    session: Session,
    model: Aggregate,
    entity_id: str,
    target: StrEnum,
    flow_run_id: str | None = None,
    reason: str | None = None,
    changes: dict[str, Any] | None = None,
) -> None:
    """Move ``entity_id`` to ``target`` (plus ``changes``) or raise.

    Raises ``NotFound``, ``IllegalTransition`` (409) and, for secrets, ``SecretLocked``
    (409) while another run than ``flow_run_id`` holds the lock, and ``Conflict`` (409,
    reason ``not_rotatable``) when asked to rotate a secret that is not rotatable.
    """
    status_type = _STATUS[model]
    label = model.__tablename__
    values: dict[str, Any] = {
        "status": target.value,
        "status_reason": reason,
        "updated_at": utcnow(),
        **(changes or {}),
    }
    if flow_run_id is not None:
        values["last_flow_run_id"] = flow_run_id

    for _ in range(_ATTEMPTS):
        row = session.execute(select(col(model.status)).where(col(model.id) == entity_id)).first()
        if row is None:
            raise NotFound(f"{label} {entity_id} does not exist", details={"id": entity_id})
        current = status_type(row[0])
        check_transition(current, target)

        conditions: list[ColumnElement[bool]] = [
            col(model.id) == entity_id,
            col(model.status) == current.value,
        ]
        if model is Secret:
            # While a run holds the lock, only that run may change the secret.
            holder = col(Secret.lock_holder)
            conditions.append(or_(holder.is_(None), holder == flow_run_id))
            if target == SecretStatus.ROTATING and current != target:
                conditions.append(col(Secret.rotatable).is_(True))
        statement = update(model).where(*conditions).values(**values)
        result = session.execute(statement.execution_options(synchronize_session=False))
        if result.rowcount == 1:  # type: ignore[attr-defined]
            session.expire_all()
            return
        if model is Secret:
            _raise_if_refused(session, entity_id, flow_run_id, target)
    raise Conflict(f"{label} {entity_id} kept changing; try again", details={"id": entity_id})


def _raise_if_refused(
    session: Session, secret_id: str, flow_run_id: str | None, target: StrEnum
) -> None:
    row = session.execute(
        select(col(Secret.lock_holder), col(Secret.rotatable)).where(col(Secret.id) == secret_id)
    ).first()
    if row is None:
        return  # deleted meanwhile: the next attempt answers NotFound
    holder, rotatable = row
    if holder is not None and holder != flow_run_id:
        raise SecretLocked(
            f"secret {secret_id} is locked by another run", details={"lock_holder": holder}
        )
    if target == SecretStatus.ROTATING and not rotatable:
        raise Conflict(
            f"secret {secret_id} is not rotatable",
            details={"id": secret_id, "reason": "not_rotatable"},
        )
