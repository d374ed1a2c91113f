"""The control-plane-api application factory.

``create_app`` builds one self-contained app: its own engine (migrated to head before
the first request), launcher and metrics registry, so tests can run many side by side.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.responses import Response

from core.errors import UpstreamUnavailable
from services.http import (
    HTTPMetricsMiddleware,
    error_body,
    install_error_handlers,
    instrument_app,
    internal_auth,
)
from services.platform.control_plane.crud import idempotency
from services.platform.control_plane.db import (
    make_engine,
    make_sessionmaker,
    session_capacity,
    upgrade_to_head,
)
from services.platform.control_plane.deps import AppState, SessionSlots
from services.platform.control_plane.launcher import WorkflowLauncher
from services.platform.control_plane.metrics import SERVICE_NAME, ControlPlaneMetrics
from services.platform.control_plane.routers import (
    applications,
    environments,
    events,
    internal_aggregates,
    internal_compensations,
    internal_records,
    internal_secrets,
    ops,
    secrets,
)
from services.platform.control_plane.settings import ControlPlaneSettings

logger = logging.getLogger(__name__)
API_PREFIX = "/api/v1"
INTERNAL_PREFIX = "/internal/v1"
PRUNE_EVERY_SECONDS = 3600.0

DESCRIPTION = """
System of record of the IDP domain (applications, environments, secrets, bindings,
domain events) and the API through which platform users start workflows.

* `/api/v1`: commands and reads for platform users. Commands accept `Idempotency-Key`.
* `/internal/v1`: for workflows; requires `X-Internal-Token` when `INTERNAL_AUTH_TOKEN`
  is set.
* Every error is `{"error": {"code", "message", "details"}}`; clients match on `code`.
"""


async def _database_unavailable(request: Request, exc: Exception) -> Response:
    # Lost connection, locked SQLite file, failover, pool exhausted: worth retrying,
    # unlike a bug.
    # Type names only: driver messages may quote SQL parameters.
    cause = type(getattr(exc, "orig", None) or exc).__name__
    logger.warning("database error on %s %s: %s", request.method, request.url.path, cause)
    error = UpstreamUnavailable("database unavailable", details={"dependency": "database"})
    return JSONResponse(error_body(error.code, error.message, error.details), error.http_status)


def prune_idempotency_records(state: AppState) -> int:
    """Delete the Idempotency-Key records older than their TTL (one statement)."""
    with state.sessions() as session:
        pruned = idempotency.prune_expired(session=session, ttl=state.settings.idempotency_ttl)
        session.commit()
    if pruned:
        logger.info("pruned %d expired Idempotency-Key records", pruned)
    return pruned


async def _prune_idempotency_records(state: AppState) -> None:
    """At start, then every hour (or TTL, if shorter). Several replicas may prune at once:
    a failed round is logged and the next one tries again."""
    every = min(PRUNE_EVERY_SECONDS, state.settings.IDP_IDEMPOTENCY_TTL_SECONDS)
    while True:
        try:
            await asyncio.to_thread(prune_idempotency_records, state)
        except Exception as exc:  # the database may be down; the service stays up
            logger.warning("pruning Idempotency-Key records failed: %s", type(exc).__name__)
        await asyncio.sleep(every)


def create_app(
    settings: ControlPlaneSettings | None = None, *, launcher: WorkflowLauncher | None = None
) -> FastAPI:
    """Build the service: migrate its database, wire routers, errors, auth and metrics."""
    settings = settings or ControlPlaneSettings.current()
    engine = make_engine(settings.database_url)
    upgrade_to_head(engine)
    metrics = ControlPlaneMetrics()
    state = AppState(
        settings=settings,
        engine=engine,
        sessions=make_sessionmaker(engine),
        launcher=launcher or WorkflowLauncher(),
        metrics=metrics,
        session_slots=SessionSlots(session_capacity()),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        pruner = asyncio.create_task(_prune_idempotency_records(state))
        try:
            yield
        finally:
            pruner.cancel()
            with suppress(asyncio.CancelledError):
                await pruner
            engine.dispose()

    app = FastAPI(
        title="IDP control-plane-api",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.control_plane = state
    install_error_handlers(app)
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.add_exception_handler(PoolTimeout, _database_unavailable)  # no connection in 30 s
    app.add_middleware(HTTPMetricsMiddleware, counter=metrics.http_requests, service=SERVICE_NAME)
    instrument_app(app, SERVICE_NAME, settings)

    app.include_router(ops.router)
    public = APIRouter(prefix=API_PREFIX)
    for module in (applications, environments, secrets, events):
        public.include_router(module.router)
    app.include_router(public)

    internal = APIRouter(
        prefix=INTERNAL_PREFIX, dependencies=[Depends(internal_auth(settings.INTERNAL_AUTH_TOKEN))]
    )
    for module in (internal_aggregates, internal_secrets, internal_records, internal_compensations):
        internal.include_router(module.router)
    app.include_router(internal)
    return app
