"""Operational endpoints: liveness, readiness (the database answers) and metrics."""

from __future__ import annotations

import anyio.to_thread
from fastapi import APIRouter
from starlette.responses import Response

from core.errors import UpstreamUnavailable
from services.http import error_responses, metrics_response
from services.platform.control_plane.db import database_answers
from services.platform.control_plane.deps import StateDep

router = APIRouter(tags=["ops"])


@router.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready", responses=error_responses(503))
async def ready(state: StateDep) -> dict[str, str]:
    if not await anyio.to_thread.run_sync(database_answers, state.engine):
        raise UpstreamUnavailable("database does not answer", details={"dependency": "database"})
    return {"status": "ready"}


@router.get("/metrics", response_class=Response)
def metrics(state: StateDep) -> Response:
    return metrics_response(state.metrics.registry)
