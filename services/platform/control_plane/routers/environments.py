"""Public API: application environments (requesting one starts its provisioning)."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse

from services.http import error_responses
from services.platform.control_plane import commands
from services.platform.control_plane.crud import applications
from services.platform.control_plane.deps import CommandDep, LauncherDep, SessionDep
from services.platform.control_plane.models import (
    EnvironmentCreate,
    EnvironmentPublic,
    EnvironmentsPublic,
)
from services.platform.control_plane.views import environment_view

router = APIRouter(tags=["environments"])
ApplicationId = Annotated[str, Path(max_length=64)]
EnvironmentId = Annotated[str, Path(max_length=64, description="<application>-<name>")]


@router.post(
    "/applications/{application_id}/environments",
    status_code=201,
    response_model=EnvironmentPublic,
    responses=error_responses(404, 409, 412, 422, 503),
    summary="Request an environment and start ApplicationEnvironmentProvisioning",
)
def request_environment(
    application_id: ApplicationId, body: EnvironmentCreate, ctx: CommandDep, request: Request
) -> JSONResponse:
    return commands.execute(
        ctx,
        request_fingerprint=commands.fingerprint(request.method, request.url.path, body),
        status_code=201,
        action=partial(commands.request_environment, application_id=application_id, data=body),
    )


@router.get(
    "/applications/{application_id}/environments",
    response_model=EnvironmentsPublic,
    responses=error_responses(404),
)
def list_environments(
    application_id: ApplicationId, session: SessionDep, launcher: LauncherDep
) -> EnvironmentsPublic:
    rows = applications.list_environments(session=session, application_id=application_id)
    return EnvironmentsPublic(data=[environment_view(r, launcher) for r in rows], count=len(rows))


@router.get(
    "/environments/{environment_id}",
    response_model=EnvironmentPublic,
    responses=error_responses(404),
)
def read_environment(
    environment_id: EnvironmentId, session: SessionDep, launcher: LauncherDep
) -> EnvironmentPublic:
    row = applications.get_environment(session=session, environment_id=environment_id)
    return environment_view(row, launcher)
