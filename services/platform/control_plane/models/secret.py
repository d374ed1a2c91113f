"""The Secret aggregate (a provider credential the platform rotates) and its bindings."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, ForeignKey, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from blocks.models import BindingSpec, StoredSecret
from blocks.platform.domain import SecretStatus, Slug
from services.platform.control_plane.models.common import ID_LENGTH, FlowRunId, UTCDateTime, utcnow

MIN_ROTATION_INTERVAL_SECONDS = 60


class SecretProvider(StrEnum):
    """Where the secret's value comes from (add providers here, never rename)."""

    HARBOR_ROBOT = "harbor-robot"


class SecretBase(SQLModel):
    provider: SecretProvider = Field(sa_type=String(32), description="Issuer of the value")
    provider_ref: str = Field(
        min_length=1, max_length=128, description="Provider's name for it, e.g. robot 'ci'"
    )
    project: str | None = Field(
        default=None, max_length=128, description="Harbor project; none for a system robot"
    )
    rotatable: bool = Field(default=True, description="Whether workflows may rotate it")
    rotation_interval_seconds: int = Field(
        default=30 * 24 * 3600,
        ge=MIN_ROTATION_INTERVAL_SECONDS,
        le=10 * 365 * 24 * 3600,
        description="Rotate when the last rotation is older than this",
    )


class SecretCreate(SecretBase):
    id: Slug = Field(description="Secret id (lowercase slug)")
    bindings: list[BindingSpec] = Field(default_factory=list, max_length=100)


class Secret(SecretBase, table=True):
    __tablename__ = "secret"

    id: str = Field(primary_key=True, max_length=ID_LENGTH)
    status: str = Field(default=SecretStatus.ACTIVE, sa_type=String(32), nullable=False)
    status_reason: str | None = Field(default=None, max_length=500)
    last_rotated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # last_rotated_at + interval, kept on write so "due" is one indexed query on any DB;
    # NULL means never rotated (due now).
    next_rotation_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    stored_backend: str | None = Field(default=None, max_length=64)
    stored_path: str | None = Field(default=None, max_length=300)
    stored_version: int | None = None
    lock_holder: str | None = Field(default=None, max_length=ID_LENGTH)
    lock_acquired_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_flow_run_id: str | None = Field(default=None, max_length=ID_LENGTH)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class SecretBinding(SQLModel, table=True):
    __tablename__ = "secret_binding"
    __table_args__ = (
        UniqueConstraint("secret_id", "environment_id", "target", name="uq_secret_binding"),
    )

    id: int | None = Field(default=None, primary_key=True)
    secret_id: str = Field(
        sa_column=Column(String(ID_LENGTH), ForeignKey("secret.id"), index=True, nullable=False)
    )
    environment_id: str = Field(
        sa_column=Column(
            String(ID_LENGTH), ForeignKey("application_environment.id"), index=True, nullable=False
        )
    )
    target: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class SecretPublic(SecretBase):
    id: str
    status: SecretStatus
    status_reason: str | None = None
    last_rotated_at: datetime | None = None
    next_rotation_at: datetime | None = Field(default=None, description="None: never rotated")
    stored: StoredSecret | None = Field(default=None, description="Where the value is, never it")
    lock_holder: str | None = Field(default=None, description="Flow run holding the lock")
    lock_acquired_at: datetime | None = None
    last_flow_run_id: str | None = None
    last_flow_run_url: str | None = None
    bindings: list[BindingSpec] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime


class SecretsPublic(SQLModel):
    data: list[SecretPublic]
    count: int


class RotationPublic(SQLModel):
    """The answer to a rotation request: the reserved run that will do the work."""

    secret_id: str
    flow_run_id: str
    flow_run_url: str | None = None
    requested_at: datetime


class LockRequest(SQLModel):
    holder: FlowRunId = Field(description="Flow run id that holds (or releases) the lock")


class LocksReleased(SQLModel):
    """What releasing every lock of a run freed."""

    holder: str
    released: list[str] = Field(description="Ids of the secrets whose lock was freed, sorted")


class RotationRecord(SQLModel):
    """What a SecretRotation run reports once the new value is stored."""

    flow_run_id: FlowRunId
    stored: StoredSecret
    rotated_at: datetime | None = Field(default=None, description="Defaults to now")
    status: SecretStatus = Field(
        default=SecretStatus.ACTIVE,
        description="active, or rotated_pending_bindings when some binding kept the old value",
    )
