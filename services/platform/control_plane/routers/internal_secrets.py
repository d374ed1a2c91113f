"""Internal API for SecretRotation runs: read, transition, lock, record a rotation, and
the list of secrets due. Mounted under /internal/v1 behind ``X-Internal-Token``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query

from services.http import error_responses
from services.platform.control_plane.crud import secrets
from services.platform.control_plane.crud.transitions import transition
from services.platform.control_plane.deps import LauncherDep, LockTTLDep, SessionDep
from services.platform.control_plane.models import (
    LockRequest,
    LocksReleased,
    RotationRecord,
    Secret,
    SecretPublic,
    SecretsPublic,
    SecretTransition,
)
from services.platform.control_plane.models.common import utcnow
from services.platform.control_plane.views import secret_view

router = APIRouter(tags=["internal"], responses=error_responses(401))
SecretId = Annotated[str, Path(max_length=64)]


@router.get("/rotations/due", response_model=SecretsPublic)
def secrets_due(
    session: SessionDep,
    launcher: LauncherDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    now: Annotated[datetime | None, Query(description="Defaults to the server's now")] = None,
) -> SecretsPublic:
    rows = secrets.list_due(session=session, now=now or utcnow(), limit=limit)
    views = [secret_view(session=session, row=r, launcher=launcher) for r in rows]
    return SecretsPublic(data=views, count=len(views))


@router.get("/secrets/{secret_id}", response_model=SecretPublic, responses=error_responses(404))
def read_secret(secret_id: SecretId, session: SessionDep, launcher: LauncherDep) -> SecretPublic:
    row = secrets.get_secret(session=session, secret_id=secret_id)
    return secret_view(session=session, row=row, launcher=launcher)


@router.post(
    "/secrets/{secret_id}/transitions",
    response_model=SecretPublic,
    responses=error_responses(404, 409, 422),
    summary="Move a secret to another status (409 illegal_transition / secret_locked)",
)
def transition_secret(
    secret_id: SecretId, body: SecretTransition, session: SessionDep, launcher: LauncherDep
) -> SecretPublic:
    transition(
        session=session,
        model=Secret,
        entity_id=secret_id,
        target=body.status,
        flow_run_id=body.flow_run_id,
        reason=body.reason,
    )
    session.commit()
    row = secrets.get_secret(session=session, secret_id=secret_id)
    return secret_view(session=session, row=row, launcher=launcher)


@router.post(
    "/secrets/{secret_id}/lock",
    response_model=SecretPublic,
    responses=error_responses(404, 409),
    summary=(
        "Acquire or renew the rotation lock (another holder's: 409 secret_locked, unless "
        "stale: older than IDP_SECRET_LOCK_TTL_SECONDS, then taken over)"
    ),
)
def acquire_lock(
    secret_id: SecretId,
    body: LockRequest,
    session: SessionDep,
    launcher: LauncherDep,
    ttl: LockTTLDep,
) -> SecretPublic:
    row = secrets.acquire_lock(session=session, secret_id=secret_id, holder=body.holder, ttl=ttl)
    session.commit()
    return secret_view(session=session, row=row, launcher=launcher)


@router.post(
    "/secrets/{secret_id}/unlock",
    response_model=SecretPublic,
    responses=error_responses(404),
    summary="Release the lock if the holder has it (otherwise a no-op)",
)
def release_lock(
    secret_id: SecretId, body: LockRequest, session: SessionDep, launcher: LauncherDep
) -> SecretPublic:
    row = secrets.release_lock(session=session, secret_id=secret_id, holder=body.holder)
    session.commit()
    return secret_view(session=session, row=row, launcher=launcher)


@router.post(
    "/locks/release",
    response_model=LocksReleased,
    summary="Release every secret lock a run holds (its cancellation and crash hooks)",
)
def release_locks_of_run(body: LockRequest, session: SessionDep) -> LocksReleased:
    released = secrets.release_locks_of(session=session, holder=body.holder)
    session.commit()
    return LocksReleased(holder=body.holder, released=released)


@router.post(
    "/secrets/{secret_id}/rotations",
    response_model=SecretPublic,
    responses=error_responses(404, 409, 412, 422),
    summary="Record a finished rotation: where the new value is stored and when",
)
def record_rotation(
    secret_id: SecretId,
    body: RotationRecord,
    session: SessionDep,
    launcher: LauncherDep,
    ttl: LockTTLDep,
) -> SecretPublic:
    row = secrets.record_rotation(session=session, secret_id=secret_id, record=body, ttl=ttl)
    session.commit()
    return secret_view(session=session, row=row, launcher=launcher)
