"""Public API: secrets with their bindings, and rotation requests."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse

from services.http import error_responses
from services.platform.control_plane import commands
from services.platform.control_plane.crud import secrets
from services.platform.control_plane.deps import CommandDep, LauncherDep, Limit, Offset, SessionDep
from services.platform.control_plane.models import (
    RotationPublic,
    SecretCreate,
    SecretPublic,
    SecretsPublic,
)
from services.platform.control_plane.views import secret_view

router = APIRouter(prefix="/secrets", tags=["secrets"])
SecretId = Annotated[str, Path(max_length=64)]


@router.post(
    "",
    status_code=201,
    response_model=SecretPublic,
    responses=error_responses(409, 422),
    summary="Register a secret and its bindings",
)
def register_secret(body: SecretCreate, ctx: CommandDep, request: Request) -> JSONResponse:
    return commands.execute(
        ctx,
        request_fingerprint=commands.fingerprint(request.method, request.url.path, body),
        status_code=201,
        action=partial(commands.register_secret, data=body),
    )


@router.get("", response_model=SecretsPublic)
def list_secrets(
    session: SessionDep, launcher: LauncherDep, limit: Limit = 100, offset: Offset = 0
) -> SecretsPublic:
    rows, total = secrets.list_secrets(session=session, limit=limit, offset=offset)
    views = [secret_view(session=session, row=r, launcher=launcher) for r in rows]
    return SecretsPublic(data=views, count=total)


@router.get("/{secret_id}", response_model=SecretPublic, responses=error_responses(404))
def read_secret(secret_id: SecretId, session: SessionDep, launcher: LauncherDep) -> SecretPublic:
    row = secrets.get_secret(session=session, secret_id=secret_id)
    return secret_view(session=session, row=row, launcher=launcher)


@router.post(
    "/{secret_id}/rotations",
    status_code=202,
    response_model=RotationPublic,
    responses=error_responses(404, 409, 503),
    summary="Start SecretRotation (409 secret_locked while one is requested or running)",
)
def request_rotation(secret_id: SecretId, ctx: CommandDep, request: Request) -> JSONResponse:
    return commands.execute(
        ctx,
        request_fingerprint=commands.fingerprint(request.method, request.url.path, None),
        status_code=202,
        action=partial(commands.request_rotation, secret_id=secret_id),
    )
