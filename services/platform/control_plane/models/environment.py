"""The ApplicationEnvironment aggregate (dev, staging, prod, ...) of an application."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field as PydanticField
from sqlalchemy import JSON, Column, ForeignKey, String
from sqlmodel import Field, SQLModel

from blocks.platform.domain import SLUG_PATTERN, EnvironmentStatus, Slug
from services.platform.control_plane.models.common import ID_LENGTH, UTCDateTime, utcnow

# Short, so that "<application>-<environment>" stays a valid id (<= 63 characters).
EnvironmentName = Annotated[str, PydanticField(pattern=SLUG_PATTERN, min_length=2, max_length=20)]
DEFAULT_SECRETS = ("app-config",)


class EnvironmentBase(SQLModel):
    secrets: list[Slug] = Field(
        default_factory=lambda: list(DEFAULT_SECRETS),
        max_length=50,
        sa_column=Column(JSON, nullable=False),
        description="Names of the secrets to provision in the environment",
    )


class EnvironmentCreate(EnvironmentBase):
    name: EnvironmentName = Field(description="Environment name, e.g. dev, staging, prod")
    keep_partial: bool = Field(
        default=False,
        description="If provisioning fails, keep what it created (repository, secrets, "
        "bindings) instead of removing it",
    )


class ApplicationEnvironment(EnvironmentBase, table=True):
    __tablename__ = "application_environment"

    id: str = Field(primary_key=True, max_length=ID_LENGTH)
    application_id: str = Field(
        sa_column=Column(
            String(ID_LENGTH), ForeignKey("application.id"), index=True, nullable=False
        )
    )
    name: str = Field(max_length=20)
    repository: str = Field(max_length=100)
    status: str = Field(
        default=EnvironmentStatus.REQUESTED, sa_type=String(32), index=True, nullable=False
    )
    status_reason: str | None = Field(default=None, max_length=500)
    last_flow_run_id: str | None = Field(default=None, max_length=ID_LENGTH)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class EnvironmentPublic(EnvironmentBase):
    id: str
    application_id: str
    name: str
    repository: str = Field(description="appenv-<environment id>")
    status: EnvironmentStatus
    status_reason: str | None = None
    last_flow_run_id: str | None = None
    last_flow_run_url: str | None = None
    created_at: datetime
    updated_at: datetime


class EnvironmentsPublic(SQLModel):
    data: list[EnvironmentPublic]
    count: int
