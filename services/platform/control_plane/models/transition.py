"""Bodies of the internal "move this aggregate to status X" calls made by workflows."""

from __future__ import annotations

from sqlmodel import Field, SQLModel

from blocks.platform.domain import ApplicationStatus, EnvironmentStatus, SecretStatus
from services.platform.control_plane.models.common import FlowRunId, Reason


class TransitionBase(SQLModel):
    flow_run_id: FlowRunId | None = Field(
        default=None, description="Run asking for it; becomes last_flow_run_id"
    )
    reason: Reason | None = Field(default=None, description="Why, for people; no secrets")


class ApplicationTransition(TransitionBase):
    status: ApplicationStatus


class EnvironmentTransition(TransitionBase):
    status: EnvironmentStatus


class SecretTransition(TransitionBase):
    status: SecretStatus
