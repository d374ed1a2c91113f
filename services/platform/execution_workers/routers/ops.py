"""Operational endpoints: liveness, readiness (providers configured) and metrics.

Readiness checks configuration, not the providers' weather: an outage of GitHub must not
take this service out of rotation (its callers get ``upstream_unavailable`` and retry),
but a half-configured provider will fail every call until a person fixes it.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from core.errors import PreconditionFailed
from services.http import error_responses, metrics_response
from services.platform.execution_workers.deps import StateDep

router = APIRouter(tags=["ops"])


@router.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready", responses=error_responses(412))
def ready(state: StateDep) -> dict[str, object]:
    providers = state.providers.describe()
    if state.providers.problems:
        raise PreconditionFailed(
            "misconfigured: " + "; ".join(f"{k}: {v}" for k, v in state.providers.problems.items()),
            details={"providers": providers},
        )
    if all(value == "not configured" for value in providers.values()):
        raise PreconditionFailed("no provider is configured", details={"providers": providers})
    return {"status": "ready", "providers": providers}


@router.get("/metrics", response_class=Response)
def metrics(state: StateDep) -> Response:
    return metrics_response(state.metrics.registry)
