"""Internal API: what workflows read and the status moves they request (applications
and environments). Mounted under /internal/v1 behind ``X-Internal-Token``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from services.http import error_responses
from services.platform.control_plane.crud import applications
from services.platform.control_plane.crud.transitions import transition
from services.platform.control_plane.deps import LauncherDep, SessionDep
from services.platform.control_plane.models import (
    Application,
    ApplicationEnvironment,
    ApplicationPublic,
    ApplicationTransition,
    EnvironmentPublic,
    EnvironmentTransition,
)
from services.platform.control_plane.views import application_view, environment_view

router = APIRouter(tags=["internal"], responses=error_responses(401))
EntityId = Annotated[str, Path(max_length=64)]


@router.get(
    "/applications/{application_id}",
    response_model=ApplicationPublic,
    responses=error_responses(404),
)
def read_application(
    application_id: EntityId, session: SessionDep, launcher: LauncherDep
) -> ApplicationPublic:
    row = applications.get_application(session=session, application_id=application_id)
    return application_view(row, launcher)


@router.post(
    "/applications/{application_id}/transitions",
    response_model=ApplicationPublic,
    responses=error_responses(404, 409, 422),
    summary="Move an application to another status (409 illegal_transition)",
)
def transition_application(
    application_id: EntityId,
    body: ApplicationTransition,
    session: SessionDep,
    launcher: LauncherDep,
) -> ApplicationPublic:
    transition(
        session=session,
        model=Application,
        entity_id=application_id,
        target=body.status,
        flow_run_id=body.flow_run_id,
        reason=body.reason,
    )
    session.commit()
    row = applications.get_application(session=session, application_id=application_id)
    return application_view(row, launcher)


@router.get(
    "/environments/{environment_id}",
    response_model=EnvironmentPublic,
    responses=error_responses(404),
)
def read_environment(
    environment_id: EntityId, session: SessionDep, launcher: LauncherDep
) -> EnvironmentPublic:
    row = applications.get_environment(session=session, environment_id=environment_id)
    return environment_view(row, launcher)


@router.post(
    "/environments/{environment_id}/transitions",
    response_model=EnvironmentPublic,
    responses=error_responses(404, 409, 422),
    summary="Move an environment to another status (409 illegal_transition)",
)
def transition_environment(
    environment_id: EntityId,
    body: EnvironmentTransition,
    session: SessionDep,
    launcher: LauncherDep,
) -> EnvironmentPublic:
    transition(
        session=session,
        model=ApplicationEnvironment,
        entity_id=environment_id,
        target=body.status,
        flow_run_id=body.flow_run_id,
        reason=body.reason,
    )
    session.commit()
    row = applications.get_environment(session=session, environment_id=environment_id)
    return environment_view(row, launcher)
