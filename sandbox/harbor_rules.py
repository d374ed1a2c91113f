"""Harbor's wire rules, shared by the Harbor sandbox's store and routes.

What a client can observe of Harbor's input checking and error format lives here: robot
name and secret rules, RBAC resource/action names, ``q`` parsing, body validation (400
vs go-swagger's 422), the ``{"errors": [{"code", "message"}]}`` body with 5xx sanitised to
``UNKNOWN``, and the small request helpers every route uses. Sources:
``tests/contracts/specs/harbor-notes.md`` §3-§6.
"""

from __future__ import annotations

import json
import re
import secrets
import string
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

ROBOT_NAME_PATTERN = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
SECRET_RULE = (
    "the secret must be 8-128, inclusively, characters long with at least 1 uppercase "
    "letter, 1 lowercase letter and 1 number"
)
# Resources and actions Harbor's RBAC knows (src/common/rbac/const.go), "*" for any.
RESOURCES = frozenset(
    (
        "*", "accessory", "artifact", "artifact-addition", "artifact-label", "audit-log",
        "catalog", "configuration", "distribution", "export-cve", "garbage-collection",
        "immutable-tag", "jobservice-monitor", "label", "ldap-user", "log", "member", "metadata",
        "notification-policy", "preheat-policy", "project", "purge-audit", "quota", "registry",
        "replication", "replication-policy", "repository", "robot", "sbom", "scan", "scan-all",
        "scanner", "security-hub", "system-volumes", "tag", "tag-retention", "user", "user-group",
    )
)  # fmt: skip
ACTIONS = frozenset(
    ("*", "create", "delete", "list", "operate", "pull", "push", "read", "scanner-pull", "stop",
     "update")
)  # fmt: skip
MAX_DURATION = 2**31 - 1


class HarborError(Exception):
    """An answer in Harbor's error format: ``{"errors": [{"code", "message"}]}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


STATUS_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    412: "PRECONDITION",
    413: "REQUEST_ENTITY_TOO_LARGE",
    422: "UNPROCESSABLE_ENTITY",
    429: "TOO_MANY_REQUEST",
}
Handler = Callable[[Request], Awaitable[Response]]
Result = tuple[Any, ...]  # (status, body) or (status, body, headers)


def error_body(status: int, message: str | None = None, code: str | None = None) -> dict[str, Any]:
    """Harbor's ``Errors`` body; every 5xx is sanitised the way Harbor does it."""
    if status >= 500:
        return {"errors": [{"code": "UNKNOWN", "message": "internal server error"}]}
    code = code or STATUS_CODES.get(status, "UNKNOWN")
    return {"errors": [{"code": code, "message": message or code.lower().replace("_", " ")}]}


def random_secret() -> str:
    """32 letters and digits with at least one of each class, as Harbor generates."""
    alphabet = string.ascii_letters + string.digits
    while True:
        value = "".join(secrets.choice(alphabet) for _ in range(32))
        if is_valid_secret(value):
            return value


def is_valid_secret(value: str) -> bool:
    return (
        8 <= len(value) <= 128
        and any(c.isupper() for c in value)
        and any(c.islower() for c in value)
        and any(c.isdigit() for c in value)
    )


def parse_q(q: str | None) -> dict[str, str]:
    """``q=k1=v1,k2=~v2`` into a dict (the caller URL-decoded it, so ``+`` is literal)."""
    result: dict[str, str] = {}
    if not q:
        return result
    for part in q.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise HarborError(400, "BAD_REQUEST", f"invalid query string: {part}")
        result[key.strip()] = value.strip()
    return result


def validate_robot_body(body: dict[str, Any], *, creating: bool) -> None:
    """The checks Harbor makes on ``RobotCreate`` / ``Robot`` bodies (400 / 422)."""
    types = {
        "name": str,
        "description": str,
        "secret": str,
        "level": str,
        "disable": bool,
        "duration": int,
        "permissions": list,
    }
    for key, expected in types.items():
        value = body.get(key)
        if value is not None and (
            not isinstance(value, expected) or (expected is int and isinstance(value, bool))
        ):
            raise HarborError(
                422, "UNPROCESSABLE_ENTITY", f"{key} in body must be of type {expected.__name__}"
            )
    if creating and not ROBOT_NAME_PATTERN.match(body.get("name") or ""):
        raise HarborError(
            400, "BAD_REQUEST", "robot name is not in lower case or contains illegal characters"
        )
    level = body.get("level")
    if level not in ("project", "system"):
        raise HarborError(400, "BAD_REQUEST", "bad request error level input")
    duration = body.get("duration")
    if duration is None or not (duration == -1 or 0 < duration <= MAX_DURATION):
        raise HarborError(400, "BAD_REQUEST", "bad request error duration input")
    validate_permissions(body.get("permissions") or [], level)


def validate_permissions(permissions: Sequence[Any], level: str) -> None:
    if not permissions:
        raise HarborError(400, "BAD_REQUEST", "bad request empty permission")
    if level == "project" and (len(permissions) != 1 or permissions[0].get("kind") != "project"):
        raise HarborError(400, "BAD_REQUEST", "bad request permission")
    for perm in permissions:
        if not isinstance(perm, dict) or perm.get("kind") not in ("system", "project"):
            raise HarborError(400, "BAD_REQUEST", "bad request permission")
        for item in perm.get("access") or []:
            resource, action = item.get("resource"), item.get("action")
            if resource not in RESOURCES or action not in ACTIONS:
                raise HarborError(
                    400, "BAD_REQUEST", f"bad request permission: {resource}:{action}"
                )


def json_endpoint(handler: Callable[[Request], Awaitable[Result]]) -> Handler:
    """Turn ``(status, body[, headers])`` or a ``HarborError`` into a Harbor response."""

    async def endpoint(request: Request) -> Response:
        try:
            status, body, *rest = await handler(request)
        except HarborError as exc:
            return error_response(request, exc)
        except Exception:  # a sandbox bug still answers like Harbor: sanitised 500
            return error_response(request, HarborError(500, "UNKNOWN", "internal server error"))
        headers = {**request_id(request), **(rest[0] if rest else {})}
        if body is None:
            return Response(status_code=status, headers=headers)
        return JSONResponse(body, status_code=status, headers=headers)

    return endpoint


def error_response(request: Request, exc: HarborError) -> Response:
    return JSONResponse(
        error_body(exc.status, exc.message, exc.code),
        status_code=exc.status,
        headers=request_id(request),
        media_type="application/json; charset=utf-8",
    )


def request_id(request: Request) -> dict[str, str]:
    return {"X-Request-Id": request.headers.get("x-request-id") or str(uuid.uuid4())}


async def read_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        raise HarborError(422, "UNPROCESSABLE_ENTITY", "body in body is required")
    try:
        body = json.loads(raw)
    except ValueError:
        raise HarborError(400, "BAD_REQUEST", "parsing body failed") from None
    if not isinstance(body, dict):
        raise HarborError(400, "BAD_REQUEST", "body must be a JSON object")
    return body


def robot_id_param(request: Request) -> int:
    raw = request.path_params["robot_id"]
    if not raw.lstrip("-").isdigit():
        raise HarborError(422, "UNPROCESSABLE_ENTITY", "robot_id in path must be of type int64")
    return int(raw)


def int_param(raw: str | None, default: int, name: str) -> int:
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise HarborError(
            422, "UNPROCESSABLE_ENTITY", f"{name} in query must be of type int64"
        ) from None
