"""The execution-workers application factory.

``create_app`` builds one self-contained app (its providers, metrics registry, event
reporter and idempotency ledger), so tests can run many side by side. Routes: the seed's
side-effect endpoints behind ``X-Internal-Token`` (when ``INTERNAL_AUTH_TOKEN`` is set),
and ``/health``, ``/ready``, ``/metrics`` without it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI

from services.http import (
    HTTPMetricsMiddleware,
    install_error_handlers,
    instrument_app,
    internal_auth,
)
from services.platform.execution_workers.deps import WorkerState
from services.platform.execution_workers.events import EventReporter
from services.platform.execution_workers.ledger import Ledger
from services.platform.execution_workers.metrics import SERVICE_NAME, WorkerMetrics
from services.platform.execution_workers.providers import Providers
from services.platform.execution_workers.routers import appenv, github, ops, secrets
from services.platform.execution_workers.settings import ExecutionWorkersSettings

DESCRIPTION = """
Performs the platform's side effects on external systems (seed 002): GitHub repositories
and branch protection, secrets, secret bindings and GitOps checks through the secret
endpoints (or Vault), and Harbor robot rotation. Internal: used by workflows (through the
`ExecutionWorkers` block) and other services, never by end users.

* Every side effect is idempotent: the same request twice leaves one side effect.
* `X-Internal-Token` is required when `INTERNAL_AUTH_TOKEN` is set.
* Every error is `{"error": {"code", "message", "details"}}` with a stable `code`;
  provider errors are normalized (`upstream_unavailable` 503, `rate_limited` 429,
  `upstream_timeout` 504, `not_found` 404, ...).
* Responses never carry secret values.
"""


def create_app(
    settings: ExecutionWorkersSettings | None = None, *, providers: Providers | None = None
) -> FastAPI:
    """Build the service from ``settings`` (the environment by default).

    ``providers`` replaces the blocks built from the settings (tests point them anywhere).
    """
    settings = settings or ExecutionWorkersSettings.current()
    providers = providers or Providers.from_settings(settings)
    metrics = WorkerMetrics()
    state = WorkerState(
        settings=settings,
        providers=providers,
        metrics=metrics,
        reporter=EventReporter(providers.control_plane, metrics),
        ledger=Ledger(),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        providers.close()

    app = FastAPI(
        title="IDP execution-workers",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.execution_workers = state
    install_error_handlers(app)
    app.add_middleware(HTTPMetricsMiddleware, counter=metrics.http_requests, service=SERVICE_NAME)
    instrument_app(app, SERVICE_NAME, settings)

    app.include_router(ops.router)
    internal = APIRouter(dependencies=[Depends(internal_auth(settings.INTERNAL_AUTH_TOKEN))])
    for module in (github, appenv, secrets):
        internal.include_router(module.router)
    app.include_router(internal)
    return app
