"""The compensation log of workflow runs (the saga log): for each flow run, the undo
actions of the steps it completed, recorded once per key, in recording order, and whether
each has been undone. The step engine reads it back to undo a failed, cancelled or
crashed run in reverse."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field as PydanticField
from pydantic import field_validator
from sqlalchemy import JSON, Column, String, UniqueConstraint, Uuid
from sqlmodel import Field, SQLModel

from services.platform.control_plane.models.common import (
    ID_LENGTH,
    Reason,
    UTCDateTime,
    has_non_finite_number,
    json_depth_over,
    secret_looking_keys,
    utcnow,
)

# Step names are CamelCase, as the platform's tasks are (tests/test_fitness.py).
STEP_NAME_PATTERN = r"^(?:[A-Z][a-z0-9]+)+$"
STEP_NAME_LENGTH = 64
KEY_LENGTH = 200
# Visible ASCII, no spaces: "<generation>:<step>:<hash of arguments>".
KEY_PATTERN = r"^[!-~]+$"
MAX_ARGUMENTS_BYTES = 16_384
MAX_ARGUMENTS_DEPTH = 16

StepName = Annotated[
    str,
    PydanticField(min_length=2, max_length=STEP_NAME_LENGTH, pattern=STEP_NAME_PATTERN),
]
CompensationKey = Annotated[
    str, PydanticField(min_length=1, max_length=KEY_LENGTH, pattern=KEY_PATTERN)
]
# Why an undo attempt failed, for people; never a secret value.
UndoError = Annotated[Reason, PydanticField(min_length=1)]


class CompensationBase(SQLModel):
    key: CompensationKey = Field(
        sa_type=String(KEY_LENGTH),
        description="Unique per run, e.g. <generation>:<step>:<hash of arguments>",
    )
    step: StepName = Field(
        sa_type=String(STEP_NAME_LENGTH),
        description="The step whose effect this undoes, e.g. MaterializeRepositories",
    )
    undo: StepName = Field(
        sa_type=String(STEP_NAME_LENGTH),
        description="The step that undoes it, e.g. DeleteRepository",
    )
    arguments: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=Column(JSON, nullable=False),
        description="What the undo step needs (a JSON object); never a secret value",
    )


class CompensationCreate(CompensationBase):
    @field_validator("arguments")
    @classmethod
    def _facts_only(cls, arguments: dict[str, Any]) -> dict[str, Any]:
        # Depth first: the other checks walk the document.
        if json_depth_over(arguments, MAX_ARGUMENTS_DEPTH):
            raise ValueError(f"arguments nest more than {MAX_ARGUMENTS_DEPTH} levels")
        if has_non_finite_number(arguments):
            raise ValueError("arguments hold NaN or Infinity, which JSON has not")
        if len(json.dumps(arguments)) > MAX_ARGUMENTS_BYTES:
            raise ValueError(f"arguments are larger than {MAX_ARGUMENTS_BYTES} bytes")
        keys = secret_looking_keys(arguments)
        if keys:
            raise ValueError(f"arguments keys look like secret values: {', '.join(keys)}")
        return arguments


class WorkflowCompensation(CompensationBase, table=True):
    __tablename__ = "workflow_compensation"
    __table_args__ = (UniqueConstraint("flow_run_id", "key", name="uq_workflow_compensation_key"),)

    # seq is the recording order; id is what clients name an entry by.
    seq: int | None = Field(default=None, primary_key=True)
    id: uuid.UUID = Field(default_factory=uuid.uuid4, sa_type=Uuid, unique=True, nullable=False)
    flow_run_id: str = Field(max_length=ID_LENGTH)
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    done_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    error: str | None = Field(default=None, max_length=500)


class CompensationSettle(SQLModel):
    """The outcome of an attempt to undo an entry."""

    error: UndoError | None = Field(
        default=None, description="None: undone (done for good); else why the attempt failed"
    )


class CompensationPublic(CompensationBase):
    id: uuid.UUID
    flow_run_id: str
    done: bool = Field(description="Undone; stays so")
    error: str | None = Field(default=None, description="Why the last attempt to undo failed")
    recorded_at: datetime
    done_at: datetime | None = None


class CompensationsPublic(SQLModel):
    data: list[CompensationPublic] = Field(description="In recording order")
    count: int
    generation: int = Field(description="How many entries are done")
