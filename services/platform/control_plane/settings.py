"""control-plane-api's settings: its database, its TTLs, the internal token it requires
and where its spans go (``create_app(settings)`` takes one; the environment by default).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic import Field

from core.internal_auth import InternalAuthSettings
from core.settings import PROJECT_ROOT
from core.telemetry import TracingSettings

# One hour: far above what one rotation holds a lock (seconds; minutes with retries).
DEFAULT_SECRET_LOCK_TTL_SECONDS = 3600.0
# One day, as payment APIs do: long enough for any client's retries.
DEFAULT_IDEMPOTENCY_TTL_SECONDS = 86400.0


class ControlPlaneSettings(InternalAuthSettings, TracingSettings):
    """Every variable control-plane-api reads (``INTERNAL_AUTH_TOKEN``: required on
    ``/internal/v1`` when set)."""

    # Persistence
    DATABASE_URL: str | None = Field(None, description="SQLAlchemy URL; SQLite file when unset")
    IDP_DATA_DIR: Path = PROJECT_ROOT / "data"

    # Secret rotation locks
    IDP_SECRET_LOCK_TTL_SECONDS: float = Field(
        DEFAULT_SECRET_LOCK_TTL_SECONDS,
        gt=0,
        description=(
            "A secret's rotation lock not renewed for this long is stale: another rotation "
            "may take it over (a run that died holding it and was never recovered)"
        ),
    )

    # Idempotency-Key records
    IDP_IDEMPOTENCY_TTL_SECONDS: float = Field(
        DEFAULT_IDEMPOTENCY_TTL_SECONDS,
        gt=0,
        description=(
            "How long a command's Idempotency-Key is remembered; after that the same key "
            "is a new request and the record is pruned"
        ),
    )

    @property
    def secret_lock_ttl(self) -> timedelta:
        return timedelta(seconds=self.IDP_SECRET_LOCK_TTL_SECONDS)

    @property
    def idempotency_ttl(self) -> timedelta:
        return timedelta(seconds=self.IDP_IDEMPOTENCY_TTL_SECONDS)

    @property
    def database_url(self) -> str:
        if self.DATABASE_URL:
            return self.DATABASE_URL
        return f"sqlite:///{self.IDP_DATA_DIR / 'control-plane.db'}"
