"""Settings read from the environment, with the names the seeds give.

Nothing reads the environment at import time: callers use the cached ``get_settings()``
(tests call ``get_settings.cache_clear()`` after changing the environment).
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PUBLIC_GITHUB_API_URL = "https://api.github.com"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


# One hour: far above what one rotation holds a lock (seconds; minutes with retries).
DEFAULT_SECRET_LOCK_TTL_SECONDS = 3600.0
# One day, as payment APIs do: long enough for any client's retries.
DEFAULT_IDEMPOTENCY_TTL_SECONDS = 86400.0


class Settings(BaseSettings):
    """Every knob of the platform. Field names are the environment variable names."""

    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore", populate_by_name=True)

    # GitHub (seed 002)
    GITHUB_TOKEN: SecretStr | None = Field(None, description="GitHub token for repos/protection")
    GITHUB_API_URL: str = Field(
        PUBLIC_GITHUB_API_URL, description="API root; GitHub Enterprise is https://host/api/v3"
    )
    GITHUB_ORG: str | None = Field(None, description="Organization that owns appenv repos")

    # Harbor (seed 002)
    HARBOR_URL: str | None = Field(None, description="Harbor base URL (without /api/v2.0)")
    HARBOR_ROBOT_USERNAME: str | None = Field(None, description="Account used to rotate robots")
    HARBOR_ROBOT_PASSWORD: SecretStr | None = None
    HARBOR_PROJECT: str | None = Field(None, description="Default project of project robots")

    # Secret-backend endpoints (seed 002)
    APPENV_SECRETS_ENDPOINT: str | None = None
    APPENV_SECRET_BINDINGS_ENDPOINT: str | None = None
    APPENV_GITOPS_VERIFY_ENDPOINT: str | None = None
    SECRET_BINDINGS_UPDATE_ENDPOINT: str | None = None

    # Vault KV v2
    VAULT_ADDR: str | None = None
    VAULT_TOKEN: SecretStr | None = None
    VAULT_KV_MOUNT: str = "secret"

    # Internal services (seed 000)
    INTERNAL_AUTH_TOKEN: SecretStr | None = None
    CONTROL_PLANE_URL: str = "http://127.0.0.1:8080"
    EXECUTION_WORKERS_URL: str = "http://127.0.0.1:8081"

    # Which block document each provider role loads ("<block-type-slug>/<name>"). Routing side
    # effects through execution-workers is a matter of pointing these at its block.
    IDP_GIT_BLOCK: str = "idp-github/default"
    IDP_REGISTRY_BLOCK: str = "idp-harbor/default"
    IDP_SECRET_BACKEND_BLOCK: str = "idp-vault-secret-backend/default"
    IDP_SECRET_BINDINGS_BLOCK: str = "idp-http-secret-backend/default"
    IDP_GITOPS_BLOCK: str = "idp-http-secret-backend/default"
    IDP_CONTROL_PLANE_BLOCK: str = "idp-control-plane/default"

    # Persistence
    DATABASE_URL: str | None = Field(None, description="SQLAlchemy URL; SQLite file when unset")
    IDP_DATA_DIR: Path = PROJECT_ROOT / "data"

    # Secret rotation locks (control plane)
    IDP_SECRET_LOCK_TTL_SECONDS: float = Field(
        DEFAULT_SECRET_LOCK_TTL_SECONDS,
        gt=0,
        description=(
            "A secret's rotation lock not renewed for this long is stale: another rotation "
            "may take it over (a run that died holding it and was never recovered)"
        ),
    )

    # Idempotency-Key records (control plane)
    IDP_IDEMPOTENCY_TTL_SECONDS: float = Field(
        DEFAULT_IDEMPOTENCY_TTL_SECONDS,
        gt=0,
        description=(
            "How long a command's Idempotency-Key is remembered; after that the same key "
            "is a new request and the record is pruned"
        ),
    )

    # Provider calls
    PROVIDER_TIMEOUT_SECONDS: float = Field(10.0, gt=0, description="Timeout of one provider call")

    # Workflow retries: every backoff delay is multiplied by this (tests set it near 0).
    IDP_RETRY_DELAY_SCALE: float = Field(
        1.0, ge=0, description="Multiplier of task retry delays (1 = production backoff)"
    )

    # Tracing (core/telemetry.py): read by entrypoints only; all unset means tracing is off.
    OTEL_EXPORTER_OTLP_ENDPOINT: str | None = Field(
        None, description="OTLP/HTTP collector, e.g. http://127.0.0.1:4318 (spans go to /v1/traces)"
    )
    IDP_TRACES_FILE: Path | None = Field(
        None, description="Development: append every finished span to this file as a JSON line"
    )
    IDP_TRACES_CONSOLE: bool = Field(
        False, description="Development: print every finished span to stderr as a JSON line"
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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
