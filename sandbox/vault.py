"""A local Vault that speaks the KV v2 secrets engine, enough for unmodified hvac 2.4.

The Vault secret backend block drives it with hvac exactly as it would drive a real
Vault: ``/v1/<mount>/data/<path>`` (read, write with ``cas``, soft delete),
``/v1/<mount>/metadata/<path>`` (read, write, delete, and ``LIST`` as an HTTP verb or
``GET ?list=true``), the response envelope, ``{"errors": [...]}`` bodies (an empty list
for a plain 404), 204 for deletes, ``X-Vault-Token`` (403 otherwise) and
``/v1/sys/health``. Semantics: ``tests/contracts/specs/vault-kv2-notes.md`` §5; the engine
itself is ``sandbox/vault_kv.py``. ``seal()`` makes every call answer 503 as a sealed
Vault does, for retry tests.

The default token ``sandbox-vault-token`` is deterministic so local setups keep working
across restarts; the server listens on loopback only.
"""

from __future__ import annotations

import hmac
import json
import threading
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sandbox.server import SandboxServer
from sandbox.vault_kv import KvMount, VaultError, to_int

DEFAULT_TOKEN = "sandbox-vault-token"
PERMISSION_DENIED = "1 error occurred:\n\t* permission denied\n\n"
_MESSAGES = {
    400: "invalid request",
    403: PERMISSION_DENIED,
    405: "unsupported operation",
    412: "required index state not present",
    429: "rate limit quota exceeded",
    500: "internal error",
    501: "Vault is not initialized",
    502: "bad gateway",
    503: "Vault is sealed",
}
_WRITES = frozenset({"POST", "PUT", "PATCH"})
Answer = tuple[int, Any]  # (status, data of the envelope); 204 has no body
Handler = Callable[[Request, KvMount | None, dict[str, Any]], Answer]


def error_body(status: int) -> dict[str, Any]:
    """Vault's error body; a plain 404 carries an empty list."""
    message = _MESSAGES.get(status)
    return {"errors": [message] if message else []}


class VaultSandbox:
    """KV v2 on loopback; ``.url`` is the ``VAULT_ADDR``."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        mounts: Sequence[str] = ("secret",),
        port: int = 0,
    ) -> None:
        self.token = token
        self.sealed = False
        self._lock = threading.Lock()
        self._mounts = {m.strip("/"): KvMount() for m in mounts}
        self.server = SandboxServer("vault", self._routes(), self.state, error_body, port=port)

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> VaultSandbox:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> VaultSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def seal(self) -> None:
        self.sealed = True

    def unseal(self) -> None:
        self.sealed = False

    def state(self) -> dict[str, Any]:
        """Paths and versions per mount; never the stored values."""
        with self._lock:
            mounts = {
                name: {
                    path: {"current_version": k.current_version, "versions": len(k.versions)}
                    for path, k in sorted(mount.keys.items())
                }
                for name, mount in self._mounts.items()
            }
        return {"sealed": self.sealed, "mounts": mounts}

    # -- routes ---------------------------------------------------------------------
    def _routes(self) -> list[BaseRoute]:
        kv = self._endpoint
        return [
            Route("/v1/sys/health", self._health, methods=["GET"]),
            Route("/v1/sys/seal-status", self._seal_status, methods=["GET"]),
            Route("/v1/auth/token/lookup-self", kv(_lookup_self, mounted=False), methods=["GET"]),
            Route("/v1/{mount}/data/{path:path}", kv(_data), methods=[*_WRITES, "GET", "DELETE"]),
            Route(
                "/v1/{mount}/metadata/{path:path}",
                kv(_metadata),
                methods=["GET", "POST", "PUT", "DELETE", "LIST"],
            ),
            # hvac lists the root of a mount without a trailing slash.
            Route("/v1/{mount}/metadata", kv(_metadata), methods=["GET", "LIST"]),
            Route("/v1/{mount}/config", kv(_config), methods=["GET", "POST", "PUT"]),
            Route(
                "/v1/{rest:path}",
                kv(_no_route, mounted=False),
                methods=["GET", "POST", "PUT", "PATCH", "DELETE", "LIST"],
            ),
        ]

    def _endpoint(
        self, handler: Handler, *, mounted: bool = True
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                if self.sealed:
                    raise VaultError(503, "Vault is sealed")
                self._authorize(request)
                body = await _json_body(request) if request.method in _WRITES else {}
                with self._lock:
                    mount = self._mount(request) if mounted else None
                    status, data = handler(request, mount, body)
            except VaultError as exc:
                return JSONResponse({"errors": exc.errors}, status_code=exc.status)
            if status == 204:
                return Response(status_code=204)
            return JSONResponse(_envelope(data), status_code=status)

        return endpoint

    def _authorize(self, request: Request) -> None:
        token = request.headers.get("x-vault-token") or ""
        auth = request.headers.get("authorization") or ""
        if not token and auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        if not token or not hmac.compare_digest(token.encode(), self.token.encode()):
            raise VaultError(403, PERMISSION_DENIED)

    def _mount(self, request: Request) -> KvMount:
        mount = self._mounts.get(request.path_params["mount"])
        if mount is None:
            raise _no_handler(request.url.path.removeprefix("/v1/"))
        return mount

    async def _health(self, request: Request) -> Response:
        sealed = self.sealed
        code_param = "sealedcode" if sealed else "activecode"
        status = to_int(request.query_params.get(code_param), 503 if sealed else 200)
        body = {
            "initialized": True,
            "sealed": sealed,
            "standby": False,
            "performance_standby": False,
            "replication_performance_mode": "disabled",
            "replication_dr_mode": "disabled",
            "server_time_utc": int(datetime.now(UTC).timestamp()),
            "version": "1.15.0",
            "cluster_name": "vault-sandbox",
            "cluster_id": "00000000-0000-0000-0000-000000000000",
        }
        return JSONResponse(body, status_code=status)

    async def _seal_status(self, request: Request) -> Response:
        body = {"type": "shamir", "initialized": True, "sealed": self.sealed, "t": 1, "n": 1}
        return JSONResponse({**body, "progress": 0, "version": "1.15.0"})


def _data(request: Request, mount: KvMount | None, body: dict[str, Any]) -> Answer:
    assert mount is not None
    path = request.path_params["path"].strip("/")
    if request.method == "GET":
        return mount.read(path, request.query_params.get("version"))
    if request.method == "DELETE":
        mount.delete_latest(path)
        return 204, None
    return 200, mount.write(path, body, patch=request.method == "PATCH")


def _metadata(request: Request, mount: KvMount | None, body: dict[str, Any]) -> Answer:
    assert mount is not None
    path = request.path_params.get("path", "").strip("/")
    if request.method == "LIST" or request.query_params.get("list") == "true":
        return 200, mount.list(path)
    if request.method == "GET":
        return 200, mount.metadata(path)
    if request.method == "DELETE":
        mount.delete_metadata(path)
    else:
        mount.write_metadata(path, body)
    return 204, None


def _config(request: Request, mount: KvMount | None, body: dict[str, Any]) -> Answer:
    assert mount is not None
    if request.method == "GET":
        return 200, dict(mount.config)
    mount.configure(body)
    return 204, None


def _lookup_self(request: Request, mount: KvMount | None, body: dict[str, Any]) -> Answer:
    data = {"accessor": "sandbox", "display_name": "token", "policies": ["root"], "ttl": 0}
    return 200, {**data, "renewable": False, "expire_time": None}


def _no_route(request: Request, mount: KvMount | None, body: dict[str, Any]) -> Answer:
    raise _no_handler(request.path_params["rest"])


def _no_handler(route: str) -> VaultError:
    return VaultError(404, f'no handler for route "{route}". route entry not found.')


def _envelope(data: Any) -> dict[str, Any]:
    return {
        "request_id": str(uuid.uuid4()),
        "lease_id": "",
        "renewable": False,
        "lease_duration": 0,
        "data": data,
        "wrap_info": None,
        "warnings": None,
        "auth": None,
        "mount_type": "kv",
    }


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise VaultError(400, "failed to parse JSON input") from None
    if not isinstance(body, dict):
        raise VaultError(400, "failed to parse JSON input")
    return body
