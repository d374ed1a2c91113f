"""control-plane-api: the system of record of the IDP domain and the API through which
platform users start workflows. ``create_app`` builds it; ``serve`` runs it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["create_app"]


def create_app(*args: Any, **kwargs: Any) -> FastAPI:
    """See ``services.platform.control_plane.app.create_app`` (imported lazily: no work at
    import)."""
    from services.platform.control_plane.app import create_app as factory

    return factory(*args, **kwargs)
