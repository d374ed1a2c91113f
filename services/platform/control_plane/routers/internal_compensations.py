"""Internal API: the compensation log of a workflow run (the saga log). The step engine
records the undo action of each step it completes, reads the log back to undo a failed,
cancelled or crashed run in reverse, and settles each entry as it undoes it."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from services.http import error_responses
from services.platform.control_plane.crud import compensations
from services.platform.control_plane.deps import SessionDep
from services.platform.control_plane.models import (
    CompensationCreate,
    CompensationPublic,
    CompensationSettle,
    CompensationsPublic,
)
from services.platform.control_plane.models.common import FLOW_RUN_ID_PATTERN, ID_LENGTH
from services.platform.control_plane.views import compensation_view

router = APIRouter(
    prefix="/workflow-runs/{flow_run_id}/compensations",
    tags=["internal"],
    responses=error_responses(401, 422),
)
RunId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=ID_LENGTH,
        pattern=FLOW_RUN_ID_PATTERN,
        description="The flow run whose log it is",
    ),
]
EntryId = Annotated[uuid.UUID, Path(description="The log's id of the entry")]


@router.post(
    "",
    status_code=201,
    response_model=CompensationPublic,
    responses={200: {"model": CompensationPublic, "description": "Key recorded before"}},
    summary="Record the undo action of a step (idempotent by key within the run)",
)
def record_compensation(
    flow_run_id: RunId, body: CompensationCreate, session: SessionDep
) -> JSONResponse:
    row, created = compensations.record_compensation(
        session=session, flow_run_id=flow_run_id, data=body
    )
    session.commit()
    return JSONResponse(
        compensation_view(row).model_dump(mode="json"), status_code=201 if created else 200
    )


@router.get(
    "",
    response_model=CompensationsPublic,
    summary="The run's log in recording order; generation = how many entries are done",
)
def list_compensations(flow_run_id: RunId, session: SessionDep) -> CompensationsPublic:
    rows = compensations.list_compensations(session=session, flow_run_id=flow_run_id)
    views = [compensation_view(row) for row in rows]
    return CompensationsPublic(
        data=views, count=len(views), generation=sum(view.done for view in views)
    )


@router.post(
    "/{entry_id}/settle",
    response_model=CompensationPublic,
    responses=error_responses(404),
    summary="Settle an entry: undone (error null; stays done) or the attempt failed (error)",
)
def settle_compensation(
    flow_run_id: RunId, entry_id: EntryId, body: CompensationSettle, session: SessionDep
) -> CompensationPublic:
    row = compensations.settle_compensation(
        session=session, flow_run_id=flow_run_id, entry_id=entry_id, error=body.error
    )
    session.commit()
    return compensation_view(row)
