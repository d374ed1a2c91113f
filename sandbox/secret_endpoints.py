"""The external secret system behind the seed's four endpoint variables, run locally.

Seed 002 says execution-workers forwards ``/appenv/secrets``, ``/appenv/secret-bindings``,
``/appenv/gitops-verify`` and ``/secrets/bindings/update`` to URLs given by
``APPENV_SECRETS_ENDPOINT``, ``APPENV_SECRET_BINDINGS_ENDPOINT``,
``APPENV_GITOPS_VERIFY_ENDPOINT`` and ``SECRET_BINDINGS_UPDATE_ENDPOINT``, but not what
those systems speak. This module defines it (the reference is docs/secret-endpoints.md)
and serves it, so the HTTP secret backend block has a real peer. All calls are ``POST``
with JSON bodies; every one is idempotent:

* ``{url}/appenv/secrets`` ``{"environment_id", "application_id", "secrets": [names]}`` →
  ``{"environment_id", "secrets": [{"name", "path", "version", "created"}]}``. Create-only:
  an existing secret is kept (``created: false``); generated values are never returned.
* ``{url}/appenv/secrets/values`` ``{"secret_id", "value"}`` → ``{"secret_id", "path",
  "version"}``: stores a rotated value; each call adds a version.
* ``{url}/appenv/secrets/delete`` ``{"environment_id", "secrets": [names]}`` →
  ``{"environment_id", "deleted": [names]}``: removes provisioned secrets (every version);
  lists only those that existed, so a repeat answers ``deleted: []``.
* ``{url}/appenv/secret-bindings`` ``{"bindings": [{"secret_id", "environment_id",
  "target", "version"?}]}`` → ``{"bindings": [... with "version"]}``: upsert keyed by
  (secret_id, environment_id, target).
* ``{url}/appenv/secret-bindings/delete`` ``{"bindings": [{"secret_id", "environment_id",
  "target"}]}`` → ``{"bindings": [...]}``: removes them, answering those that existed (with
  the version they had).
* ``{url}/appenv/gitops-verify`` ``{"environment_id", "repository"}`` →
  ``{"environment_id", "repository", "reconciled", "revision", "message"}``. Not reconciled
  while the environment has secrets provisioned here but no binding targets it yet;
  reconciled otherwise. ``force_gitops()`` overrides the answer for tests.
* ``{url}/secrets/bindings/update`` ``{"secret_id", "stored": {"backend", "path",
  "version"}, "bindings": [{"environment_id", "target"}]}`` → ``{"bindings": [...]}``:
  every binding now points at ``stored.version``.

Errors use the platform's own body ``{"error": {"code", "message", "details"}}``. With
``internal_token`` set, a missing or wrong ``X-Internal-Token`` gets 401.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from core.errors import (
    DomainError,
    InvalidInput,
    NotFound,
    Unauthorized,
    UpstreamUnavailable,
    error_for_code,
)
from core.internal_auth import INTERNAL_TOKEN_HEADER
from sandbox.server import SandboxServer

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_STATUS_CODES = {
    400: "invalid_input",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    412: "precondition_failed",
    422: "invalid_input",
    429: "rate_limited",
    504: "upstream_timeout",
}
Body = dict[str, Any]


def error_body(status: int) -> dict[str, Any]:
    """The platform's error body for an injected status."""
    code = _STATUS_CODES.get(
        status, "upstream_unavailable" if status >= 500 else "upstream_rejected"
    )
    return {"error": error_for_code(code)(f"injected {status}").to_dict()}


class SecretEndpointsSandbox:
    """The four secret endpoints on loopback; ``.url`` is the common base URL."""

    def __init__(self, port: int = 0, *, internal_token: str | None = None) -> None:
        self.internal_token = internal_token
        self._lock = threading.Lock()
        # (environment_id, name) -> {"path", "version", "application_id"}
        self._secrets: dict[tuple[str, str], dict[str, Any]] = {}
        self._values: dict[str, dict[str, Any]] = {}  # secret_id -> {"path", "version", "value"}
        self._bindings: dict[tuple[str, str, str], int | None] = {}
        self._forced: dict[str, tuple[bool, str]] = {}
        self.server = SandboxServer(
            "secret-endpoints", self._routes(), self.state, error_body, port=port
        )

    @property
    def url(self) -> str:
        return self.server.url

    def endpoints(self) -> dict[str, str]:
        """The four environment variables pointing at this server."""
        return {
            "APPENV_SECRETS_ENDPOINT": f"{self.url}/appenv/secrets",
            "APPENV_SECRET_BINDINGS_ENDPOINT": f"{self.url}/appenv/secret-bindings",
            "APPENV_GITOPS_VERIFY_ENDPOINT": f"{self.url}/appenv/gitops-verify",
            "SECRET_BINDINGS_UPDATE_ENDPOINT": f"{self.url}/secrets/bindings/update",
        }

    def start(self) -> SecretEndpointsSandbox:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> SecretEndpointsSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def force_gitops(self, environment_id: str, reconciled: bool | None, message: str = "") -> None:
        """Make gitops-verify answer ``reconciled`` for one environment (None: back to rules)."""
        with self._lock:
            if reconciled is None:
                self._forced.pop(environment_id, None)
            else:
                self._forced[environment_id] = (reconciled, message)

    def secret_value(self, secret_id: str) -> str:
        """The last stored value of ``secret_id`` (tests only; never served over HTTP)."""
        with self._lock:
            return str(self._values[secret_id]["value"])

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "secrets": [
                    {
                        "environment_id": env,
                        "name": name,
                        "path": s["path"],
                        "version": s["version"],
                    }
                    for (env, name), s in sorted(self._secrets.items())
                ],
                "values": [
                    {"secret_id": sid, "path": v["path"], "version": v["version"]}
                    for sid, v in sorted(self._values.items())
                ],
                "bindings": [
                    {"secret_id": s, "environment_id": e, "target": t, "version": v}
                    for (s, e, t), v in sorted(self._bindings.items())
                ],
            }

    # -- routes ---------------------------------------------------------------------
    def _routes(self) -> list[BaseRoute]:
        post = ["POST"]
        return [
            Route("/appenv/secrets", self._endpoint(self._provision), methods=post),
            Route("/appenv/secrets/values", self._endpoint(self._store_value), methods=post),
            Route("/appenv/secrets/delete", self._endpoint(self._delete_secrets), methods=post),
            Route("/appenv/secret-bindings", self._endpoint(self._bindings_upsert), methods=post),
            Route(
                "/appenv/secret-bindings/delete",
                self._endpoint(self._bindings_delete),
                methods=post,
            ),
            Route("/appenv/gitops-verify", self._endpoint(self._gitops_verify), methods=post),
            Route("/secrets/bindings/update", self._endpoint(self._bindings_update), methods=post),
            Route("/{rest:path}", self._endpoint(self._no_route), methods=["GET", *post, "PUT"]),
        ]

    def _endpoint(
        self, handler: Callable[[Body], Body]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                self._authorize(request)
                if handler == self._no_route:
                    raise NotFound(f"no route {request.method} {request.url.path}")
                body = await _json_object(request)
                with self._lock:
                    result = handler(body)
            except DomainError as exc:
                return JSONResponse({"error": exc.to_dict()}, status_code=exc.http_status)
            except Exception:  # a sandbox bug must still answer in the platform's format
                error = UpstreamUnavailable("internal error").to_dict()
                return JSONResponse({"error": error}, status_code=500)
            return JSONResponse(result)

        return endpoint

    def _authorize(self, request: Request) -> None:
        if self.internal_token is None:
            return
        given = request.headers.get(INTERNAL_TOKEN_HEADER) or ""
        if not hmac.compare_digest(given.encode(), self.internal_token.encode()):
            raise Unauthorized(f"missing or invalid {INTERNAL_TOKEN_HEADER}")

    def _no_route(self, body: Body) -> Body:
        raise NotFound("no such endpoint")

    def _provision(self, body: Body) -> Body:
        env = _text(body, "environment_id")
        app = _text(body, "application_id")
        out = []
        for name in dict.fromkeys(_names(body)):
            entry = self._secrets.get((env, name))
            created = entry is None
            if entry is None:
                # The generated value stays here; callers only learn where it lives.
                entry = {"path": f"appenv/{env}/{name}", "version": 1, "application_id": app}
                entry["value"] = secrets.token_urlsafe(32)
                self._secrets[(env, name)] = entry
            out.append({"name": name, "path": entry["path"], "version": entry["version"]})
            out[-1]["created"] = created
        return {"environment_id": env, "secrets": out}

    def _delete_secrets(self, body: Body) -> Body:
        env = _text(body, "environment_id")
        names = _names(body)
        deleted = [n for n in dict.fromkeys(names) if self._secrets.pop((env, n), None)]
        return {"environment_id": env, "deleted": deleted}

    def _store_value(self, body: Body) -> Body:
        secret_id = _text(body, "secret_id")
        value = _text(body, "value")
        entry = self._values.setdefault(
            secret_id, {"path": f"secrets/{secret_id}", "version": 0, "value": ""}
        )
        entry["version"] += 1
        entry["value"] = value
        return {"secret_id": secret_id, "path": entry["path"], "version": entry["version"]}

    def _bindings_upsert(self, body: Body) -> Body:
        items = body.get("bindings")
        if not isinstance(items, list):
            raise InvalidInput("bindings must be a list", details={"field": "bindings"})
        parsed = []
        for item in items:
            if not isinstance(item, dict):
                raise InvalidInput("each binding must be an object", details={"field": "bindings"})
            key = (_text(item, "secret_id"), _text(item, "environment_id"), _text(item, "target"))
            version = _version(item.get("version"))
            parsed.append((key, version))
        out = []
        for key, version in parsed:
            if version is None:
                version = self._bindings.get(key)
            self._bindings[key] = version
            out.append(_binding(key, version))
        return {"bindings": out}

    def _bindings_delete(self, body: Body) -> Body:
        items = body.get("bindings")
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise InvalidInput("bindings must be a list of objects", details={"field": "bindings"})
        keys = [
            (_text(i, "secret_id"), _text(i, "environment_id"), _text(i, "target")) for i in items
        ]
        removed = []
        for key in dict.fromkeys(keys):
            if key in self._bindings:
                removed.append(_binding(key, self._bindings.pop(key)))
        return {"bindings": removed}

    def _gitops_verify(self, body: Body) -> Body:
        env = _text(body, "environment_id")
        repository = _text(body, "repository")
        if env in self._forced:
            reconciled, message = self._forced[env]
        else:
            # Secrets provisioned here but not bound yet are what a controller would wait
            # for; anything else (including secrets kept in Vault) counts as converged.
            has_secrets = any(e == env for e, _ in self._secrets)
            has_bindings = any(e == env for _, e, _ in self._bindings)
            reconciled = has_bindings or not has_secrets
            message = "" if reconciled else "waiting for secret bindings"
        revision = None
        if reconciled:
            bound = sorted(f"{s}|{t}|{v}" for (s, e, t), v in self._bindings.items() if e == env)
            revision = hashlib.sha1("\n".join([env, *bound]).encode()).hexdigest()[:12]  # noqa: S324
        return {
            "environment_id": env,
            "repository": repository,
            "reconciled": reconciled,
            "revision": revision,
            "message": message,
        }

    def _bindings_update(self, body: Body) -> Body:
        secret_id = _text(body, "secret_id")
        stored = body.get("stored")
        if not isinstance(stored, dict):
            raise InvalidInput("stored must be an object", details={"field": "stored"})
        _text(stored, "backend")
        _text(stored, "path")
        version = _version(stored.get("version"))
        if version is None:
            raise InvalidInput("stored.version is required", details={"field": "stored.version"})
        items = body.get("bindings")
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise InvalidInput("bindings must be a list of objects", details={"field": "bindings"})
        keys = [(secret_id, _text(i, "environment_id"), _text(i, "target")) for i in items]
        for key in keys:
            self._bindings[key] = version
        return {"bindings": [_binding(key, version) for key in keys]}


def _binding(key: tuple[str, str, str], version: int | None) -> Body:
    secret_id, environment_id, target = key
    return {
        "secret_id": secret_id,
        "environment_id": environment_id,
        "target": target,
        "version": version,
    }


def _names(body: Body) -> list[str]:
    names = body.get("secrets")
    if not isinstance(names, list) or not all(isinstance(n, str) and NAME.match(n) for n in names):
        raise InvalidInput("secrets must be a list of names", details={"field": "secrets"})
    return names


def _text(body: Body, name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > 4096:
        raise InvalidInput(f"{name} must be a non-empty string", details={"field": name})
    return value


def _version(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput("version must be a positive integer", details={"field": "version"})
    return value


async def _json_object(request: Request) -> Body:
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        raise InvalidInput("body is not JSON") from None
    if not isinstance(body, dict):
        raise InvalidInput("body must be a JSON object")
    return body
