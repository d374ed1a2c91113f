"""The commands platform users send: each writes domain state and, where the seed says
so, starts a workflow, all in one database transaction.

The launch happens after the rows are written (so a duplicate name fails before any
run exists) and before the commit (so a launch that fails rolls every row back:
nothing half-written). An ``Idempotency-Key`` makes a repeated command answer the
stored response without running again; the key is claimed first in the transaction,
so concurrent repeats wait for the first one and then replay its answer.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlmodel import Session

from blocks.platform.domain import (
    WORKFLOW_APPENV_PROVISIONING,
    WORKFLOW_APPLICATION_ONBOARDING,
    WORKFLOW_SECRET_ROTATION,
    Aggregate,
    EventName,
)
from blocks.platform.workflows import (
    ApplicationEnvironmentProvisioningRequest,
    ApplicationOnboardingRequest,
    SecretRotationRequest,
)
from core.errors import Conflict
from services.platform.control_plane.crud import applications, idempotency, secrets
from services.platform.control_plane.crud.events import add_event
from services.platform.control_plane.launcher import (
    LaunchedRun,
    WorkflowLauncher,
    launch_from_thread,
)
from services.platform.control_plane.metrics import ControlPlaneMetrics
from services.platform.control_plane.models import (
    ApplicationCreate,
    ApplicationPublic,
    EnvironmentCreate,
    EnvironmentPublic,
    IdempotencyRecord,
    RotationPublic,
    SecretCreate,
    SecretPublic,
)
from services.platform.control_plane.models.common import utcnow
from services.platform.control_plane.views import application_view, environment_view, secret_view

REPLAYED_HEADER = "Idempotent-Replayed"


@dataclass(frozen=True)
class CommandContext:
    session: Session
    launcher: WorkflowLauncher
    metrics: ControlPlaneMetrics
    idempotency_key: str | None
    lock_ttl: timedelta
    idempotency_ttl: timedelta


def fingerprint(method: str, path: str, body: BaseModel | None) -> str:
    """What must match for a repeated ``Idempotency-Key`` to be the same request."""
    text = f"{method} {path}\n{body.model_dump_json() if body is not None else ''}"
    return hashlib.sha256(text.encode()).hexdigest()


def _replay(record: IdempotencyRecord) -> JSONResponse:
    return JSONResponse(record.response_body, record.status_code, headers={REPLAYED_HEADER: "true"})


def execute(
    ctx: CommandContext,
    *,
    request_fingerprint: str,
    status_code: int,
    action: Callable[[CommandContext], BaseModel],
) -> JSONResponse:
    """Run ``action`` in one transaction, honouring the Idempotency-Key."""
    session, key = ctx.session, ctx.idempotency_key
    record = None
    if key:
        stored = idempotency.find_response(
            session=session, key=key, fingerprint=request_fingerprint, ttl=ctx.idempotency_ttl
        )
        if stored is not None:
            return _replay(stored)
        try:
            record = idempotency.reserve_key(
                session=session, key=key, fingerprint=request_fingerprint
            )
        except idempotency.KeyTaken:
            session.rollback()
            stored = idempotency.find_response(
                session=session, key=key, fingerprint=request_fingerprint, ttl=ctx.idempotency_ttl
            )
            if stored is None:
                raise Conflict("a request with this Idempotency-Key is in progress") from None
            return _replay(stored)
    try:
        body = jsonable_encoder(action(ctx))
        if record is not None:
            idempotency.store_response(record=record, status_code=status_code, body=body)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return JSONResponse(body, status_code)


def _launch(
    ctx: CommandContext, workflow: str, request: BaseModel, aggregate_id: str
) -> LaunchedRun:
    # Same client key (within its TTL) => same Prefect key => Prefect returns the run it
    # already made.
    if ctx.idempotency_key:
        suffix = f"{ctx.idempotency_key}:{idempotency.generation(ctx.idempotency_ttl)}"
    else:
        suffix = uuid.uuid4().hex
    key = f"{workflow}:{aggregate_id}:{suffix}"
    return launch_from_thread(ctx.launcher, workflow, request, idempotency_key=key)


def register_application(ctx: CommandContext, data: ApplicationCreate) -> ApplicationPublic:
    """Record the application and start ApplicationOnboarding."""
    app = applications.create_application(session=ctx.session, data=data)
    run = _launch(
        ctx,
        WORKFLOW_APPLICATION_ONBOARDING,
        ApplicationOnboardingRequest(application_id=app.id),
        app.id,
    )
    app.last_flow_run_id = run.flow_run_id
    add_event(
        session=ctx.session,
        metrics=ctx.metrics,
        name=EventName.APPLICATION_CREATED,
        aggregate=Aggregate.APPLICATION,
        aggregate_id=app.id,
        payload={"team": app.team},
        flow_run_id=run.flow_run_id,
    )
    ctx.session.flush()
    return application_view(app, ctx.launcher)


def request_environment(
    ctx: CommandContext, application_id: str, data: EnvironmentCreate
) -> EnvironmentPublic:
    """Record the environment of an onboarded application; start its provisioning."""
    app = applications.get_application(session=ctx.session, application_id=application_id)
    env = applications.create_environment(session=ctx.session, application=app, data=data)
    run = _launch(
        ctx,
        WORKFLOW_APPENV_PROVISIONING,
        ApplicationEnvironmentProvisioningRequest(
            environment_id=env.id, keep_partial=data.keep_partial
        ),
        env.id,
    )
    env.last_flow_run_id = run.flow_run_id
    add_event(
        session=ctx.session,
        metrics=ctx.metrics,
        name=EventName.APPENV_REQUESTED,
        aggregate=Aggregate.ENVIRONMENT,
        aggregate_id=env.id,
        payload={"application_id": app.id, "name": env.name, "repository": env.repository},
        flow_run_id=run.flow_run_id,
    )
    ctx.session.flush()
    return environment_view(env, ctx.launcher)


def register_secret(ctx: CommandContext, data: SecretCreate) -> SecretPublic:
    """Record a secret and its bindings (rotations are requested separately)."""
    secret = secrets.create_secret(session=ctx.session, data=data)
    add_event(
        session=ctx.session,
        metrics=ctx.metrics,
        name=EventName.SECRET_REGISTERED,
        aggregate=Aggregate.SECRET,
        aggregate_id=secret.id,
        payload={
            "provider": data.provider.value,
            "provider_ref": data.provider_ref,
            "bindings": len(data.bindings),
        },
    )
    ctx.session.flush()
    return secret_view(session=ctx.session, row=secret, launcher=ctx.launcher)


def request_rotation(ctx: CommandContext, secret_id: str) -> RotationPublic:
    """Reserve the secret's lock (atomically: one winner) and start SecretRotation."""
    reservation = f"reserved-{uuid.uuid4().hex}"
    secrets.reserve_rotation(
        session=ctx.session, secret_id=secret_id, holder=reservation, ttl=ctx.lock_ttl
    )
    run = _launch(
        ctx, WORKFLOW_SECRET_ROTATION, SecretRotationRequest(secret_id=secret_id), secret_id
    )
    secrets.hand_over_lock(
        session=ctx.session,
        secret_id=secret_id,
        reserved=reservation,
        holder=run.flow_run_id,
        ttl=ctx.lock_ttl,
    )
    add_event(
        session=ctx.session,
        metrics=ctx.metrics,
        name=EventName.SECRET_ROTATION_REQUESTED,
        aggregate=Aggregate.SECRET,
        aggregate_id=secret_id,
        flow_run_id=run.flow_run_id,
    )
    ctx.session.flush()
    return RotationPublic(
        secret_id=secret_id,
        flow_run_id=run.flow_run_id,
        flow_run_url=run.ui_url,
        requested_at=utcnow(),
    )
