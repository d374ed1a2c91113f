"""Responses remembered by ``Idempotency-Key`` so a repeated command gets the same answer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from services.platform.control_plane.models.common import UTCDateTime, utcnow

MAX_KEY_LENGTH = 255


class IdempotencyRecord(SQLModel, table=True):
    __tablename__ = "idempotency_record"

    key: str = Field(primary_key=True, max_length=MAX_KEY_LENGTH)
    # sha256 of method, route and body: the same key with another request is refused.
    fingerprint: str = Field(max_length=64)
    status_code: int = 0
    response_body: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
