"""Persistence of ``Idempotency-Key`` → response records.

A record lives ``IDP_IDEMPOTENCY_TTL_SECONDS`` (default a day): after that its key is a
new request. Expired records are invisible at once and deleted by ``prune_expired``,
which the app runs at start and then periodically.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from core.errors import InvalidInput
from services.platform.control_plane.models import IdempotencyRecord
from services.platform.control_plane.models.common import utcnow


class KeyTaken(Exception):
    """Another request with the same key committed first (caller re-reads it)."""


def find_response(
    *, session: Session, key: str, fingerprint: str, ttl: timedelta
) -> IdempotencyRecord | None:
    """The stored response for ``key``; ``InvalidInput`` if it was used for another request.

    An expired record is deleted here (in the caller's transaction) and counts as none."""
    record = session.get(IdempotencyRecord, key, populate_existing=True)
    if record is None:
        return None
    if record.created_at < utcnow() - ttl:
        # A statement, not session.delete(): a concurrent request may delete it first.
        session.execute(
            delete(IdempotencyRecord)
            .where(col(IdempotencyRecord.key) == key)
            .execution_options(synchronize_session=False)
        )
        session.expunge(record)
        return None
    if record.fingerprint != fingerprint:
        raise InvalidInput(
            "this Idempotency-Key was already used for a different request",
            details={
                "fields": [
                    {
                        "field": "Idempotency-Key",
                        "location": "header",
                        "type": "idempotency_key_reused",
                        "message": "key reused with another method, path or body",
                    }
                ]
            },
        )
    return record


def reserve_key(*, session: Session, key: str, fingerprint: str) -> IdempotencyRecord:
    """Claim ``key`` first in the command's transaction, so concurrent repeats queue here."""
    record = IdempotencyRecord(key=key, fingerprint=fingerprint)
    session.add(record)
    try:
        session.flush()
    except IntegrityError as exc:
        raise KeyTaken(key) from exc
    return record


def store_response(*, record: IdempotencyRecord, status_code: int, body: dict[str, Any]) -> None:
    record.status_code = status_code
    record.response_body = body


def prune_expired(*, session: Session, ttl: timedelta) -> int:
    """Delete every record older than ``ttl``; returns how many went."""
    result = session.execute(
        delete(IdempotencyRecord)
        .where(col(IdempotencyRecord.created_at) < utcnow() - ttl)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def generation(ttl: timedelta) -> int:
    """Which TTL-long period it is now. Part of the Prefect idempotency key of the run a
    keyed command starts: a retry after a lost commit (minutes later) adopts the run
    already created, while the same key reused after its record expired starts a new one.
    (A retry straddling a period boundary starts a second run: odds ~ retry delay / TTL.)"""
    return int(utcnow().timestamp() // ttl.total_seconds())
