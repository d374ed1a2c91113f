"""Outcomes of workflow runs, reported by the flows (which are short-lived processes) so
the control plane can expose their duration and retries on ``/metrics``."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import field_validator
from sqlalchemy import String
from sqlmodel import Field, SQLModel

from blocks.platform.domain import PLATFORM_WORKFLOWS
from services.platform.control_plane.models.common import ID_LENGTH, FlowRunId, UTCDateTime, utcnow


class RunResult(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"


class WorkflowRunBase(SQLModel):
    workflow: str = Field(
        max_length=64, schema_extra={"json_schema_extra": {"enum": list(PLATFORM_WORKFLOWS)}}
    )
    result: RunResult = Field(sa_type=String(16))
    duration_seconds: float = Field(ge=0, le=30 * 24 * 3600)
    retries: int = Field(default=0, ge=0, le=10_000, description="Task retries during the run")

    @field_validator("workflow")
    @classmethod
    def _known_workflow(cls, workflow: str) -> str:
        # Metric labels stay bounded: only the workflows the platform defines.
        if workflow not in PLATFORM_WORKFLOWS:
            raise ValueError(f"unknown workflow; expected one of {', '.join(PLATFORM_WORKFLOWS)}")
        return workflow


class WorkflowRunReport(WorkflowRunBase):
    flow_run_id: FlowRunId


class WorkflowRun(WorkflowRunBase, table=True):
    __tablename__ = "workflow_run"

    flow_run_id: str = Field(primary_key=True, max_length=ID_LENGTH)
    reported_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class WorkflowRunPublic(WorkflowRunBase):
    flow_run_id: str
    reported_at: datetime
