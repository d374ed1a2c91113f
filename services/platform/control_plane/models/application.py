"""The Application aggregate: a team's service, onboarded once, then given environments."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field as PydanticField
from sqlalchemy import String
from sqlmodel import Field, SQLModel

from blocks.platform.domain import ApplicationStatus, Slug
from services.platform.control_plane.models.common import ID_LENGTH, UTCDateTime, utcnow

Team = Annotated[str, PydanticField(pattern=r"^[a-z0-9][a-z0-9._-]*$", min_length=1, max_length=64)]


class ApplicationBase(SQLModel):
    team: Team = Field(max_length=64, description="Owning team (lowercase slug)")
    description: str = Field(default="", max_length=500, description="What the application does")


class ApplicationCreate(ApplicationBase):
    name: Slug = Field(description="Application name; also its id (lowercase slug)")


class Application(ApplicationBase, table=True):
    __tablename__ = "application"

    id: str = Field(primary_key=True, max_length=ID_LENGTH)
    status: str = Field(
        default=ApplicationStatus.REGISTERED, sa_type=String(32), index=True, nullable=False
    )
    status_reason: str | None = Field(default=None, max_length=500)
    last_flow_run_id: str | None = Field(default=None, max_length=ID_LENGTH)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class ApplicationPublic(ApplicationBase):
    id: str
    name: str
    status: ApplicationStatus
    status_reason: str | None = None
    last_flow_run_id: str | None = None
    last_flow_run_url: str | None = Field(default=None, description="Prefect UI link of that run")
    created_at: datetime
    updated_at: datetime


class ApplicationsPublic(SQLModel):
    data: list[ApplicationPublic]
    count: int
