"""HTTP → ``core.errors``: the one status table every block uses, and the httpx half of
translating errors (timeouts, refused connections, our services' error bodies).

Each block module translates vendor errors exactly once, through these: ``error_for_status``
is the status → error table (GitHub, Harbor, Vault and the secret endpoints all map an
upstream status with it), ``raise_for_response`` reads a vendor's error body,
``error_from_service`` rebuilds the error our own services answered (the control plane,
execution-workers), ``translate_http_errors`` turns httpx exceptions into domain errors.
Messages are built from the status, the request path and the vendor's error code (never
from request bodies or credentials) and are cut short by ``DomainError``. Exceptions are
raised ``from None``: a chained httpx exception would carry the URL and headers into logs
and pickled Prefect states.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.utils import parsedate_to_datetime
from functools import cache
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from core.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    RateLimited,
    Unauthorized,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
    error_for_code,
    shorten,
)

VendorCode = Callable[[httpx.Response], str | None]
M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

_BY_STATUS: dict[int, type[DomainError]] = {
    400: InvalidInput,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    408: UpstreamTimeout,
    409: Conflict,
    412: PreconditionFailed,
    422: InvalidInput,
}


def required(value: T | None, variable: str) -> T:
    """A setting ``from_env`` cannot do without; ``InvalidInput`` names the variable."""
    if value is None or value == "":
        raise InvalidInput(f"{variable} is not set", details={"variable": variable})
    return value


def error_for_status(
    status: int,
    message: str,
    *,
    retry_after: float | None = None,
    details: dict[str, Any] | None = None,
) -> DomainError:
    """The domain error for an upstream HTTP status (the one table every block shares)."""
    if status == 429:
        return RateLimited(
            message, retry_after=retry_after, details=details, upstream_status=status
        )
    if status >= 500:
        return UpstreamUnavailable(message, details=details, upstream_status=status)
    cls = _BY_STATUS.get(status, UpstreamRejected)
    return cls(message, details=details, upstream_status=status)


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def raise_for_response(response: httpx.Response, vendor: str, vendor_code: VendorCode) -> None:
    """Raise the domain error for a non-2xx response; return quietly otherwise."""
    if response.is_success:
        return
    status = response.status_code
    code = None
    try:
        code = vendor_code(response)
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        code = None  # non-JSON bodies from proxies: status alone must do
    request = response.request
    message = f"{vendor} {request.method} {request.url.path} -> {status}"
    if code:
        message += f" {code}"
    details: dict[str, Any] = {"vendor": vendor, "status": status}
    if code:
        details["vendor_code"] = str(code)[:80]
    raise error_for_status(
        status,
        message,
        retry_after=retry_after_seconds(response.headers.get("retry-after")),
        details=details,
    )


def error_from_service(response: httpx.Response, service: str) -> DomainError:
    """The error one of our services answered, rebuilt from its ``{"error": {"code",
    "message", "details"}}`` body (``services/http.py``); by status when the body is not
    ours (a proxy's page) or names a code this client does not know."""
    status = response.status_code
    try:
        error = response.json()["error"]
        code, message = str(error["code"]), str(error.get("message") or "")
        details = dict(error.get("details") or {})
    except (ValueError, KeyError, TypeError, AttributeError):
        retry_after = retry_after_seconds(response.headers.get("retry-after"))
        return error_for_status(status, f"{service} answered {status}", retry_after=retry_after)
    cls = error_for_code(code)
    message = shorten(message) or f"{service} answered {status}"
    if cls is UpstreamRejected and code != UpstreamRejected.code:
        return error_for_status(status, message, details={**details, "code": code})
    return cls(message, details=details, upstream_status=status)


@contextmanager
def translate_http_errors(vendor: str) -> Iterator[None]:
    """Turn every httpx exception raised inside into a ``DomainError``."""
    try:
        yield
    except DomainError:
        raise
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:  # configuration, not weather
        raise InvalidInput(
            f"{vendor}: invalid URL ({type(exc).__name__})", details={"vendor": vendor}
        ) from None
    except httpx.TimeoutException as exc:
        raise UpstreamTimeout(
            f"{vendor}: {type(exc).__name__}", details={"vendor": vendor}
        ) from None
    except httpx.TransportError as exc:  # refused, reset, DNS, protocol errors
        raise UpstreamUnavailable(
            f"{vendor}: {type(exc).__name__}", details={"vendor": vendor}
        ) from None
    except httpx.HTTPStatusError as exc:
        raise_for_response(exc.response, vendor, lambda r: None)
        raise  # pragma: no cover - raise_for_response always raises for an error status
    except (httpx.HTTPError, httpx.StreamError) as exc:
        raise UpstreamRejected(
            f"{vendor}: {type(exc).__name__}", details={"vendor": vendor}
        ) from None


def parse_json(response: httpx.Response, vendor: str) -> Any:
    """The JSON body of a successful response, or ``UpstreamRejected`` if it is not JSON."""
    try:
        return response.json()
    except ValueError:
        raise UpstreamRejected(
            f"{vendor} {response.request.url.path}: response is not JSON",
            details={"vendor": vendor, "status": response.status_code},
        ) from None


def parse_model(model: type[M], data: Any, vendor: str, what: str) -> M:
    """Validate an upstream payload; a shape we do not understand is ``UpstreamRejected``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in e["loc"]) for e in exc.errors()})[:5]
        raise UpstreamRejected(
            f"{vendor}: unexpected {what}", details={"vendor": vendor, "fields": fields}
        ) from None


@cache
def shared_ssl_context() -> ssl.SSLContext:
    """One verifying TLS context per process (httpx's default: certifi, or SSL_CERT_FILE).

    Building it costs ~100 ms, which httpx would otherwise pay for every new client, i.e.
    for every block loaded in a task run. An SSLContext is safe to share between clients.
    """
    return httpx.create_ssl_context()


class ClientSlot:
    """Holds one lazily built client per block instance.

    Copies and pickles of a block start with an empty slot (a client belongs to one
    process and one block instance), so Prefect can hash, copy and persist blocks.
    """

    def __init__(self) -> None:
        self.client: Any = None
        self.lock = threading.Lock()

    def __deepcopy__(self, memo: dict[int, Any]) -> ClientSlot:
        return ClientSlot()

    def __reduce__(self) -> tuple[Any, ...]:
        return (ClientSlot, ())

    def get(self, build: Callable[[], Any], is_closed: Callable[[Any], bool]) -> Any:
        with self.lock:
            if self.client is None or is_closed(self.client):
                self.client = build()
            return self.client

    def close(self, close: Callable[[Any], None]) -> None:
        with self.lock:
            client, self.client = self.client, None
        if client is not None:
            close(client)
