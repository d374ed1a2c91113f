"""Public API: applications (registering one starts ApplicationOnboarding)."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse

from services.http import error_responses
from services.platform.control_plane import commands
from services.platform.control_plane.crud import applications
from services.platform.control_plane.deps import CommandDep, LauncherDep, Limit, Offset, SessionDep
from services.platform.control_plane.models import (
    ApplicationCreate,
    ApplicationPublic,
    ApplicationsPublic,
)
from services.platform.control_plane.views import application_view

router = APIRouter(prefix="/applications", tags=["applications"])
ApplicationId = Annotated[str, Path(max_length=64, description="Application id (its name)")]


@router.post(
    "",
    status_code=201,
    response_model=ApplicationPublic,
    responses=error_responses(409, 422, 503),
    summary="Register an application and start ApplicationOnboarding",
)
def register_application(
    body: ApplicationCreate, ctx: CommandDep, request: Request
) -> JSONResponse:
    return commands.execute(
        ctx,
        request_fingerprint=commands.fingerprint(request.method, request.url.path, body),
        status_code=201,
        action=partial(commands.register_application, data=body),
    )


@router.get("", response_model=ApplicationsPublic)
def list_applications(
    session: SessionDep, launcher: LauncherDep, limit: Limit = 100, offset: Offset = 0
) -> ApplicationsPublic:
    rows, total = applications.list_applications(session=session, limit=limit, offset=offset)
    return ApplicationsPublic(data=[application_view(r, launcher) for r in rows], count=total)


@router.get("/{application_id}", response_model=ApplicationPublic, responses=error_responses(404))
def read_application(
    application_id: ApplicationId, session: SessionDep, launcher: LauncherDep
) -> ApplicationPublic:
    row = applications.get_application(session=session, application_id=application_id)
    return application_view(row, launcher)
