"""Internal API: workflows record domain events and report run outcomes here (both
idempotent: 201 the first time, 200 with the stored record after)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from services.http import error_responses
from services.platform.control_plane.crud import events
from services.platform.control_plane.deps import MetricsDep, SessionDep
from services.platform.control_plane.models import (
    DomainEventCreate,
    DomainEventPublic,
    WorkflowRunPublic,
    WorkflowRunReport,
)
from services.platform.control_plane.views import event_view

router = APIRouter(tags=["internal"], responses=error_responses(401, 422))


@router.post(
    "/events",
    status_code=201,
    response_model=DomainEventPublic,
    responses={200: {"model": DomainEventPublic, "description": "Already recorded"}},
    summary="Record a domain event (idempotent by id)",
)
def record_event(body: DomainEventCreate, session: SessionDep, metrics: MetricsDep) -> JSONResponse:
    row, created = events.record_event(session=session, data=body, metrics=metrics)
    session.commit()
    return JSONResponse(
        event_view(row).model_dump(mode="json"), status_code=201 if created else 200
    )


@router.post(
    "/workflow-runs",
    status_code=201,
    response_model=WorkflowRunPublic,
    responses={200: {"model": WorkflowRunPublic, "description": "Already reported"}},
    summary="Report a finished run's outcome (idempotent by flow_run_id)",
)
def report_workflow_run(
    body: WorkflowRunReport, session: SessionDep, metrics: MetricsDep
) -> JSONResponse:
    row, created = events.report_run(session=session, report=body, metrics=metrics)
    session.commit()
    public = WorkflowRunPublic.model_validate(row)
    return JSONResponse(public.model_dump(mode="json"), status_code=201 if created else 200)
