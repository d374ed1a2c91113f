"""Persistence of secrets, their bindings, their rotation lock and rotations.

The lock is one column, ``lock_holder``: a rotation request reserves it, the run it
started (or any run, when it is free) acquires it, the holder releases it. Every change
of it is a conditional UPDATE whose rowcount decides, so concurrent requests cannot
both win on SQLite or PostgreSQL.

A lock is a lease: ``lock_acquired_at`` is set when it is taken and renewed each time its
holder acquires it again. One older than the TTL (``IDP_SECRET_LOCK_TTL_SECONDS``) is
stale, the mark of a run that died holding it and was never recovered, and the next
reservation or acquisition takes it over; the old holder then gets ``secret_locked``.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, or_, true, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core.errors import Conflict, InvalidInput, NotFound, PreconditionFailed, SecretLocked
from services.platform.control_plane.crud.transitions import transition
from services.platform.control_plane.models import (
    ApplicationEnvironment,
    RotationRecord,
    Secret,
    SecretBinding,
    SecretCreate,
)
from services.platform.control_plane.models.common import utcnow

logger = logging.getLogger(__name__)


def create_secret(*, session: Session, data: SecretCreate) -> Secret:
    """Insert a secret with its bindings; bindings must name existing environments."""
    if session.get(Secret, data.id) is not None:
        raise Conflict(f"secret {data.id} already exists", details={"id": data.id})
    bad_fields = []
    seen: set[tuple[str, str]] = set()
    for index, binding in enumerate(data.bindings):
        if session.get(ApplicationEnvironment, binding.environment_id) is None:
            bad_fields.append(
                {
                    "field": f"bindings.{index}.environment_id",
                    "location": "body",
                    "type": "not_found",
                    "message": f"environment {binding.environment_id} does not exist",
                }
            )
        key = (binding.environment_id, binding.target)
        if key in seen:
            bad_fields.append(
                {
                    "field": f"bindings.{index}",
                    "location": "body",
                    "type": "duplicate",
                    "message": "the same environment and target appear twice",
                }
            )
        seen.add(key)
    if bad_fields:
        names = ", ".join(f["field"] for f in bad_fields)
        raise InvalidInput(f"invalid request: {names}", details={"fields": bad_fields})

    secret = Secret.model_validate(data.model_dump(exclude={"bindings"}))
    session.add(secret)
    for binding in data.bindings:
        session.add(
            SecretBinding(
                secret_id=data.id, environment_id=binding.environment_id, target=binding.target
            )
        )
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(f"secret {data.id} already exists", details={"id": data.id}) from exc
    return secret


def get_secret(*, session: Session, secret_id: str) -> Secret:
    secret = session.get(Secret, secret_id)
    if secret is None:
        raise NotFound(f"secret {secret_id} does not exist", details={"id": secret_id})
    return secret


def bindings_of(*, session: Session, secret_id: str) -> list[SecretBinding]:
    rows = session.exec(
        select(SecretBinding)
        .where(SecretBinding.secret_id == secret_id)
        .order_by(col(SecretBinding.id))
    ).all()
    return list(rows)


def list_secrets(*, session: Session, limit: int, offset: int) -> tuple[list[Secret], int]:
    total = session.exec(select(func.count()).select_from(Secret)).one()
    rows = session.exec(select(Secret).order_by(col(Secret.id)).offset(offset).limit(limit)).all()
    return list(rows), total


def list_due(*, session: Session, now: datetime, limit: int) -> list[Secret]:
    """Rotatable secrets never rotated, or whose interval has elapsed; oldest first."""
    due = or_(col(Secret.next_rotation_at).is_(None), col(Secret.next_rotation_at) <= now)
    rows = session.exec(
        select(Secret)
        .where(col(Secret.rotatable).is_(True), due)
        .order_by(col(Secret.next_rotation_at).asc().nulls_first(), col(Secret.id))
        .limit(limit)
    ).all()
    return list(rows)


def _set_lock(
    session: Session, secret_id: str, condition: ColumnElement[bool], **values: object
) -> bool:
    statement = (
        update(Secret)
        .where(col(Secret.id) == secret_id, condition)
        .values(updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    changed = session.execute(statement).rowcount == 1  # type: ignore[attr-defined]
    session.expire_all()
    return changed


def _take_stale(
    session: Session,
    secret_id: str,
    ttl: timedelta,
    condition: ColumnElement[bool],
    **values: object,
) -> bool:
    """Take the lock from a holder whose lease ran out (taken or last renewed more than
    ``ttl`` ago), if ``condition`` holds too; the takeover is logged. Only called once the
    ordinary take failed, so the usual path costs no extra query."""
    previous = session.exec(select(Secret.lock_holder).where(col(Secret.id) == secret_id)).first()
    if previous is None:
        return False
    stale = (col(Secret.lock_holder) == previous) & (col(Secret.lock_acquired_at) < utcnow() - ttl)
    if not _set_lock(session, secret_id, stale & condition, **values):
        return False
    logger.warning(
        "secret %s: stale rotation lock of %s taken over by %s",
        secret_id,
        previous,
        values["lock_holder"],
    )
    return True


def _locked_error(session: Session, secret_id: str, ttl: timedelta) -> SecretLocked:
    secret = get_secret(session=session, secret_id=secret_id)
    details: dict[str, object] = {"lock_holder": secret.lock_holder}
    if secret.lock_acquired_at is not None:
        details["lock_expires_at"] = (secret.lock_acquired_at + ttl).isoformat()
    return SecretLocked(f"secret {secret_id} is locked by a rotation in progress", details=details)


def reserve_rotation(*, session: Session, secret_id: str, holder: str, ttl: timedelta) -> None:
    """Take the free (or stale) lock of a rotatable secret for a rotation about to start."""
    rotatable = col(Secret.rotatable).is_(True)
    values: dict[str, object] = {"lock_holder": holder, "lock_acquired_at": utcnow()}
    free = col(Secret.lock_holder).is_(None) & rotatable
    if _set_lock(session, secret_id, free, **values) or _take_stale(
        session, secret_id, ttl, rotatable, **values
    ):
        return
    secret = get_secret(session=session, secret_id=secret_id)
    if not secret.rotatable:
        raise Conflict(
            f"secret {secret_id} is not rotatable",
            details={"id": secret_id, "reason": "not_rotatable"},
        )
    raise _locked_error(session, secret_id, ttl)


def hand_over_lock(
    *, session: Session, secret_id: str, reserved: str, holder: str, ttl: timedelta
) -> None:
    """Give a reservation to the run it started (same transaction as the reservation)."""
    held = col(Secret.lock_holder) == reserved
    if not _set_lock(session, secret_id, held, lock_holder=holder, last_flow_run_id=holder):
        raise _locked_error(session, secret_id, ttl)


def acquire_lock(*, session: Session, secret_id: str, holder: str, ttl: timedelta) -> Secret:
    """Take the lock for ``holder``, or renew it if ``holder`` has it already; a stale
    lock of another holder is taken over."""
    values: dict[str, object] = {
        "lock_holder": holder,
        "lock_acquired_at": utcnow(),
        "last_flow_run_id": holder,
    }
    free_or_mine = or_(col(Secret.lock_holder).is_(None), col(Secret.lock_holder) == holder)
    if not (
        _set_lock(session, secret_id, free_or_mine, **values)
        or _take_stale(session, secret_id, ttl, true(), **values)
    ):
        raise _locked_error(session, secret_id, ttl)
    return get_secret(session=session, secret_id=secret_id)


def release_lock(*, session: Session, secret_id: str, holder: str) -> Secret:
    """Free the lock if ``holder`` has it; otherwise change nothing (not an error)."""
    mine = col(Secret.lock_holder) == holder
    _set_lock(session, secret_id, mine, lock_holder=None, lock_acquired_at=None)
    return get_secret(session=session, secret_id=secret_id)


def release_locks_of(*, session: Session, holder: str) -> list[str]:
    """Free every lock ``holder`` has: for a run that ends without releasing its own (a
    cancelled or crashed sweep holds up to ``max_concurrency`` of them). The secrets keep
    their status (a ``rotating`` one's truth is unknown; the next rotation may proceed).
    Returns the ids freed, sorted; none is not an error."""
    mine = col(Secret.lock_holder) == holder
    held = sorted(session.exec(select(Secret.id).where(mine)).all())
    if held:
        statement = (
            update(Secret)
            .where(mine, col(Secret.id).in_(held))
            .values(lock_holder=None, lock_acquired_at=None, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        session.execute(statement)
        session.expire_all()
    return held


def record_rotation(
    *,
    session: Session,
    secret_id: str,
    record: RotationRecord,
    ttl: timedelta,
) -> Secret:
    """Store where the new value is and when it was rotated; the run must hold the lock."""
    secret = get_secret(session=session, secret_id=secret_id)
    if secret.lock_holder is None:
        raise PreconditionFailed(
            f"acquire the lock of secret {secret_id} before recording a rotation",
            details={"id": secret_id},
        )
    if secret.lock_holder != record.flow_run_id:
        raise _locked_error(session, secret_id, ttl)
    rotated_at = record.rotated_at or utcnow()
    transition(
        session=session,
        model=Secret,
        entity_id=secret_id,
        target=record.status,
        flow_run_id=record.flow_run_id,
        changes={
            "stored_backend": record.stored.backend,
            "stored_path": record.stored.path,
            "stored_version": record.stored.version,
            "last_rotated_at": rotated_at,
            "next_rotation_at": rotated_at + timedelta(seconds=secret.rotation_interval_seconds),
        },
    )
    return get_secret(session=session, secret_id=secret_id)
