"""The DomainEvent log: what happened to which aggregate, recorded once per event id."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field as PydanticField
from pydantic import field_validator
from sqlalchemy import JSON, Column, Index, String, Uuid
from sqlmodel import Field, SQLModel

from blocks.platform.domain import EVENT_NAME_PATTERN, Aggregate, EventResult
from services.platform.control_plane.models.common import (
    ID_LENGTH,
    FlowRunId,
    UTCDateTime,
    secret_looking_keys,
    utcnow,
)

EventNameStr = Annotated[
    str, PydanticField(pattern=EVENT_NAME_PATTERN.pattern, min_length=3, max_length=100)
]
MAX_PAYLOAD_BYTES = 16_384


class DomainEventBase(SQLModel):
    name: EventNameStr = Field(
        sa_type=String(100),
        description="blocks.platform.domain.EventName or workflow_<agg>_<flow>_<result>",
    )
    aggregate: Aggregate = Field(sa_type=String(32))
    aggregate_id: str = Field(min_length=1, max_length=ID_LENGTH)
    result: EventResult = Field(default=EventResult.SUCCESS, sa_type=String(16))
    payload: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=Column(JSON, nullable=False),
        description="Facts about the event; never a secret value",
    )
    flow_run_id: FlowRunId | None = Field(default=None, max_length=ID_LENGTH)


class DomainEventCreate(DomainEventBase):
    id: uuid.UUID = Field(
        default_factory=uuid.uuid4, description="Client-chosen id; recording it again is a no-op"
    )
    occurred_at: datetime | None = Field(default=None, description="Defaults to now")

    @field_validator("payload")
    @classmethod
    def _no_secrets(cls, payload: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(payload, default=str)) > MAX_PAYLOAD_BYTES:
            raise ValueError(f"payload is larger than {MAX_PAYLOAD_BYTES} bytes")
        # Payloads are readable by anyone who can list events.
        keys = secret_looking_keys(payload)
        if keys:
            raise ValueError(f"payload keys look like secret values: {', '.join(keys)}")
        return payload


class DomainEvent(DomainEventBase, table=True):
    __tablename__ = "domain_event"
    __table_args__ = (Index("ix_domain_event_aggregate", "aggregate", "aggregate_id"),)

    # seq orders events recorded in the same instant; id is the client's idempotency key.
    seq: int | None = Field(default=None, primary_key=True)
    id: uuid.UUID = Field(sa_type=Uuid, unique=True, nullable=False)
    name: str = Field(sa_type=String(100), index=True)
    occurred_at: datetime = Field(
        default_factory=utcnow, sa_type=UTCDateTime, index=True, nullable=False
    )
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class DomainEventPublic(DomainEventBase):
    id: uuid.UUID
    occurred_at: datetime
    recorded_at: datetime


class DomainEventsPublic(SQLModel):
    data: list[DomainEventPublic]
    count: int
