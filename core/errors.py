"""The one error tree of idp-workflows.

Vendor errors (PyGithub, httpx, hvac) are translated into these exactly once, at the
block boundary; services map ``code`` to an HTTP status in one exception handler; tasks
retry only when ``retryable`` is true. Codes are public API: add, never rename.

    DomainError                      code                  retryable  http
    ├── TransientError                                     yes
    │   ├── UpstreamUnavailable      upstream_unavailable  yes        503
    │   ├── RateLimited              rate_limited          yes        429
    │   ├── UpstreamTimeout          upstream_timeout      yes        504
    │   └── WorkflowEngineUnavailable workflow_engine_unavailable yes 503
    └── PermanentError                                     no
        ├── InvalidInput             invalid_input         no         422
        ├── Unauthorized             unauthorized          no         401
        ├── Forbidden                forbidden             no         403
        ├── NotFound                 not_found             no         404
        ├── Conflict                 conflict              no         409
        │   ├── IllegalTransition    illegal_transition    no         409
        │   ├── SecretLocked         secret_locked         no         409
        │   └── ResourceMismatch     resource_mismatch     no         409
        ├── PreconditionFailed       precondition_failed   no         412
        └── UpstreamRejected         upstream_rejected     no         502

Messages are for people and may change; tests and clients match on ``code``.
Messages are cut to ``MAX_MESSAGE`` characters so a vendor body never floods a log,
and must never contain a secret value (blocks build them from status and vendor
error codes, not from request bodies).
"""

from __future__ import annotations

from typing import Any, ClassVar

MAX_MESSAGE = 300


def shorten(text: str, limit: int = MAX_MESSAGE) -> str:
    """Cut ``text`` to ``limit`` characters, marking the cut."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class DomainError(Exception):
    """Base of every error that crosses a layer boundary."""

    code: ClassVar[str] = "domain_error"
    retryable: ClassVar[bool] = False
    http_status: ClassVar[int] = 500

    def __init__(
        self,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        upstream_status: int | None = None,
    ) -> None:
        self.message = shorten(message)
        self.details = details or {}
        self.upstream_status = upstream_status
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep errors picklable with their keyword arguments (Prefect persists states).
        return (_rebuild, (type(self), self.message, self.details, self.upstream_status))

    def to_dict(self) -> dict[str, Any]:
        """The wire form used by every service: ``{"code", "message", "details"}``."""
        return {"code": self.code, "message": self.message, "details": self.details}


def _rebuild(
    cls: type[DomainError], message: str, details: dict[str, Any], upstream_status: int | None
) -> DomainError:
    return cls(message, details=details, upstream_status=upstream_status)


class TransientError(DomainError):
    """Worth retrying: the same call may succeed later."""

    code = "transient_error"
    retryable = True
    http_status = 503


class UpstreamUnavailable(TransientError):
    code = "upstream_unavailable"
    http_status = 503


class RateLimited(TransientError):
    code = "rate_limited"
    http_status = 429

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        details: dict[str, Any] | None = None,
        upstream_status: int | None = None,
    ) -> None:
        details = dict(details or {})
        if retry_after is not None:
            details["retry_after"] = retry_after
        super().__init__(message, details=details, upstream_status=upstream_status)

    @property
    def retry_after(self) -> float | None:
        value = self.details.get("retry_after")
        return float(value) if value is not None else None


class UpstreamTimeout(TransientError):
    code = "upstream_timeout"
    http_status = 504


class WorkflowEngineUnavailable(TransientError):
    code = "workflow_engine_unavailable"
    http_status = 503


class PermanentError(DomainError):
    """Retrying cannot help; a person or a changed input must act."""

    code = "permanent_error"
    retryable = False
    http_status = 400


class InvalidInput(PermanentError):
    code = "invalid_input"
    http_status = 422


class Unauthorized(PermanentError):
    code = "unauthorized"
    http_status = 401


class Forbidden(PermanentError):
    code = "forbidden"
    http_status = 403


class NotFound(PermanentError):
    code = "not_found"
    http_status = 404


class Conflict(PermanentError):
    code = "conflict"
    http_status = 409


class IllegalTransition(Conflict):
    code = "illegal_transition"


class SecretLocked(Conflict):
    code = "secret_locked"


class ResourceMismatch(Conflict):
    """An existing resource was adopted but does not match what was asked for."""

    code = "resource_mismatch"


class PreconditionFailed(PermanentError):
    code = "precondition_failed"
    http_status = 412


class UpstreamRejected(PermanentError):
    """The provider refused the request for a reason none of the above names."""

    code = "upstream_rejected"
    http_status = 502


def all_error_classes() -> list[type[DomainError]]:
    """Every class of the tree, for the service handler and the fitness tests."""
    seen: list[type[DomainError]] = []
    stack: list[type[DomainError]] = [DomainError]
    while stack:
        cls = stack.pop()
        seen.append(cls)
        stack.extend(cls.__subclasses__())
    return seen


def error_for_code(code: str) -> type[DomainError]:
    """The class for a wire ``code`` (clients rebuild errors from service bodies)."""
    for cls in all_error_classes():
        if cls.code == code:
            return cls
    return UpstreamRejected


def is_retryable(exc: BaseException) -> bool:
    """True for transient domain errors; anything else is treated as a bug, not retried."""
    return isinstance(exc, DomainError) and exc.retryable
