"""HTTP plumbing every service shares, so all of them answer alike.

- ``install_error_handlers``: the ONE place where ``core.errors`` codes become HTTP
  statuses. Every error, including request validation and unknown routes, leaves as
  ``{"error": {"code", "message", "details"}}``.
- ``internal_auth``: the ``X-Internal-Token`` check of seed 000 (constant-time compare;
  no enforcement when no token is configured).
- ``HTTPMetricsMiddleware``: ``http_requests_total{service,route,method,status}`` labelled
  by the route *template* (``/api/v1/secrets/{secret_id}``), never the raw path, so the
  number of series stays bounded.
- ``instrument_app``: a server span per request that continues the caller's trace (W3C
  ``traceparent``), and the process's tracing configured when the app starts.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from pydantic import BaseModel, Field, SecretStr
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    RateLimited,
    Unauthorized,
    shorten,
)
from core.internal_auth import INTERNAL_TOKEN_HEADER
from core.telemetry import TracingSettings, configure_tracing, flush_tracing, tracing_enabled

logger = logging.getLogger(__name__)

UNMATCHED_ROUTE = "<unmatched>"

# Statuses Starlette raises itself (unknown route, wrong method) and the code they carry.
_STATUS_CODES: dict[int, str] = {
    cls.http_status: cls.code
    for cls in (Unauthorized, Forbidden, NotFound, Conflict, InvalidInput, RateLimited)
}
_STATUS_CODES[405] = "method_not_allowed"


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code (core.errors)")
    message: str = Field(description="For people; may change")
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorResponse(BaseModel):
    """The body of every error answered by our services."""

    error: ErrorDetail


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route, so /docs shows the error body of each status."""
    return {status: {"model": ErrorResponse} for status in statuses}


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The wire form of every error answered by our services."""
    return {"error": {"code": code, "message": shorten(message), "details": details or {}}}


def _field_errors(errors: Sequence[Any]) -> list[dict[str, str]]:
    """Name each bad field without echoing its value (it could be a secret)."""
    fields = []
    for err in errors:
        loc = [str(part) for part in err.get("loc", ())]
        location = loc[0] if loc else "body"
        path = loc[1:] if location in {"body", "query", "path", "header", "cookie"} else loc
        fields.append(
            {
                "field": ".".join(path) or location,
                "location": location,
                "type": str(err.get("type", "invalid")),
                "message": shorten(str(err.get("msg", "invalid value")), 200),
            }
        )
    return fields


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    headers = {}
    retry_after = exc.details.get("retry_after")
    if retry_after is not None:
        headers["Retry-After"] = str(int(float(retry_after) + 0.999))
    return JSONResponse(error_body(exc.code, exc.message, exc.details), exc.http_status, headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    fields = _field_errors(exc.errors())
    names = ", ".join(f["field"] for f in fields)
    return JSONResponse(
        error_body(InvalidInput.code, f"invalid request: {names}", {"fields": fields}),
        InvalidInput.http_status,
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = _STATUS_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else "request failed"
    return JSONResponse(error_body(code, message), exc.status_code, exc.headers)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    # A bug, not a domain outcome: log it with its traceback, answer without internals.
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse(error_body("internal_error", "internal server error"), 500)


def install_error_handlers(app: FastAPI) -> None:
    """Map every error a service can raise to one body shape and the code's HTTP status."""
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)


_token_header = APIKeyHeader(name=INTERNAL_TOKEN_HEADER, auto_error=False)


def internal_auth(token: SecretStr | None) -> Callable[..., None]:
    """A dependency that enforces ``X-Internal-Token`` when ``token`` is set.

    Use it on a router: ``include_router(r, dependencies=[Depends(internal_auth(t))])``.
    """
    expected = token.get_secret_value().encode() if token and token.get_secret_value() else None

    def require_internal_token(
        supplied: Annotated[str | None, Security(_token_header)] = None,
    ) -> None:
        if expected is None:
            return  # local development: no token configured, no enforcement
        if supplied is None or not hmac.compare_digest(supplied.encode(), expected):
            raise Unauthorized(f"missing or wrong {INTERNAL_TOKEN_HEADER} header")

    return require_internal_token


def http_requests_counter(registry: CollectorRegistry) -> Counter:
    """``http_requests_total`` registered on a service's own registry."""
    return Counter(
        "http_requests_total",
        "HTTP requests answered, by route template and status",
        ["service", "route", "method", "status"],
        registry=registry,
    )


def metrics_response(registry: CollectorRegistry) -> Response:
    """``/metrics`` in the Prometheus text format."""
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


class HTTPMetricsMiddleware:
    """Counts every HTTP request once, labelled by the route template that served it."""

    def __init__(self, app: ASGIApp, *, counter: Counter, service: str) -> None:
        self.app = app
        self.counter = counter
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # stays 500 when the app raises before answering

        async def counting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            template = route_template(scope)
            self.counter.labels(self.service, template, scope["method"], str(status)).inc()


def route_template(scope: Scope) -> str:
    """The template of the route that served ``scope`` (after routing ran).

    FastAPI 0.150 keeps routes of included routers relative to their router and records
    the full template in its effective route context; plain Starlette routes carry it.
    """
    fastapi_scope = scope.get("fastapi")
    context = (
        fastapi_scope.get("effective_route_context") if isinstance(fastapi_scope, dict) else None
    )
    template = getattr(context, "path_format", None) or getattr(scope.get("route"), "path", None)
    return template if isinstance(template, str) and template else UNMATCHED_ROUTE


# Probes and scrapes would be most of the spans and tell nothing about a workflow.
UNTRACED_URLS = "/health$,/ready$,/metrics$"


def instrument_app(app: FastAPI, service: str, settings: TracingSettings | None = None) -> None:
    """Trace ``app``: a server span per request, joined to the caller's trace.

    Call it from the factory (``create_app``). The span names the route template
    (``POST /internal/v1/events``) and carries ``idp.service``; headers and bodies are
    not recorded. Tracing itself is configured when the app starts (its lifespan calls
    ``core.telemetry.configure_tracing(service)``) and flushed when it stops. When the
    process does not trace (no exporter in the settings, no provider installed), the app
    is left as it is: tracing off costs nothing per request.
    """
    if not tracing_enabled(settings):
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.trace import Span

    def name_service(span: Span, scope: dict[str, Any]) -> None:
        if span.is_recording():
            span.set_attribute("idp.service", service)

    FastAPIInstrumentor.instrument_app(
        app,
        server_request_hook=name_service,
        excluded_urls=UNTRACED_URLS,
        exclude_spans=["receive", "send"],
    )
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def traced_lifespan(target: Any) -> AsyncIterator[Any]:
        configure_tracing(service, settings=settings)
        try:
            async with inner(target) as state:
                yield state
        finally:
            flush_tracing()

    app.router.lifespan_context = traced_lifespan


def run_service(
    prog: str, create_app: Callable[[], FastAPI], default_port: int, argv: Sequence[str] | None
) -> None:
    """``[--host] [--port]``, then the app built by ``create_app`` under uvicorn until
    interrupted (the services' ``python -m`` and ``idp`` entry points)."""
    import argparse

    import uvicorn

    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=default_port)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="info")
