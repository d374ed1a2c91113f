"""The platform's own blocks' settings: where its services are, for their ``from_env``.

The token is the shared internal one (``core.internal_auth.InternalAuthSettings``); the
services' own settings are in ``services/platform/*/settings.py``.
"""

from __future__ import annotations

from pydantic import Field

from core.internal_auth import InternalAuthSettings

DEFAULT_CONTROL_PLANE_URL = "http://127.0.0.1:8080"
DEFAULT_EXECUTION_WORKERS_URL = "http://127.0.0.1:8081"


class ControlPlaneClientSettings(InternalAuthSettings):
    """``ControlPlane.from_env`` (seed 000)."""

    CONTROL_PLANE_URL: str = Field(
        DEFAULT_CONTROL_PLANE_URL, description="Base URL of control-plane-api"
    )


class ExecutionWorkersClientSettings(InternalAuthSettings):
    """``ExecutionWorkers.from_env``."""

    EXECUTION_WORKERS_URL: str = Field(
        DEFAULT_EXECUTION_WORKERS_URL, description="Base URL of execution-workers"
    )
