"""Persistence of ``Idempotency-Key`` → response records."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from core.errors import InvalidInput
from services.control_plane.models import IdempotencyRecord


class KeyTaken(Exception):
    """Another request with the same key committed first (caller re-reads it)."""


def find_response(*, session: Session, key: str, fingerprint: str) -> IdempotencyRecord | None:
    """The stored response for ``key``; ``InvalidInput`` if it was used for another request."""
    record = session.get(IdempotencyRecord, key, populate_existing=True)
    if record is None:
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
