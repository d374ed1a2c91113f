"""Secrets in HashiCorp Vault's KV v2 engine, spoken with unmodified hvac 2.4.

A ``SecretStore``: values (generated at provisioning, or issued by a rotation) live in
Vault; bindings and the GitOps check are other roles (the secret system's HTTP
endpoints, ``blocks/secret_endpoints.py``). Layout under the mount:
``<prefix>/appenv/<environment_id>/<name>`` for provisioned secrets and
``<prefix>/secrets/<secret_id>`` for rotated values, each ``{"value": ...}``; the undo of
provisioning deletes a key's metadata and every version. Vault and
``requests`` errors are translated once, in ``translate_errors()``; hvac's adapter is
subclassed (a documented extension point) only to keep the HTTP status on its errors.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import hvac
import hvac.adapters
import hvac.exceptions
import requests
from prefect.blocks.core import Block
from pydantic import Field, PrivateAttr, SecretStr

from blocks._http import ClientSlot, error_for_status, required, retry_after_seconds
from blocks.models import StoredSecret
from blocks.ports import SecretStore
from blocks.settings import VaultSettings
from core.errors import (
    Conflict,
    DomainError,
    InvalidInput,
    NotFound,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)

VENDOR = "vault"
BACKEND = "vault"
CAS_MISMATCH = "check-and-set parameter did not match"
SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_STATUS_BY_CLASS: dict[type[hvac.exceptions.VaultError], int] = {
    hvac.exceptions.InvalidRequest: 400,
    hvac.exceptions.Unauthorized: 401,
    hvac.exceptions.Forbidden: 403,
    hvac.exceptions.InvalidPath: 404,
    hvac.exceptions.PreconditionFailed: 412,
    hvac.exceptions.RateLimitExceeded: 429,
    hvac.exceptions.InternalServerError: 500,
    hvac.exceptions.VaultNotInitialized: 501,
    hvac.exceptions.BadGateway: 502,
    hvac.exceptions.VaultDown: 503,
}


class _StatusAdapter(hvac.adapters.JSONAdapter):
    """hvac's JSON adapter, with the HTTP status and Retry-After kept on raised errors."""

    def _raise_for_error(self, method: str, url: str, response: requests.Response) -> None:
        try:
            super()._raise_for_error(method, url, response)
        except hvac.exceptions.VaultError as exc:
            exc.status_code = response.status_code
            exc.retry_after = response.headers.get("Retry-After")
            raise


def _vault_error(exc: hvac.exceptions.VaultError) -> DomainError:
    status = getattr(exc, "status_code", None) or _STATUS_BY_CLASS.get(type(exc), 502)
    path = urlsplit(exc.url or "").path
    message = f"{VENDOR} {(exc.method or '').upper()} {path} -> {status} {type(exc).__name__}"
    # 412 is Vault Enterprise's "not consistent yet": worth retrying, unlike other 4xx.
    if status == 412:
        return UpstreamUnavailable(message, details={"vendor": VENDOR}, upstream_status=412)
    return error_for_status(
        status,
        message,
        retry_after=retry_after_seconds(getattr(exc, "retry_after", None)),
        details={"vendor": VENDOR, "status": status, "vendor_code": type(exc).__name__},
    )


@contextmanager
def translate_errors() -> Iterator[None]:
    """The one place where hvac and requests errors become domain errors."""
    try:
        yield
    except DomainError:
        raise
    except hvac.exceptions.VaultError as exc:
        raise _vault_error(exc) from None
    except (
        requests.exceptions.InvalidURL,
        requests.exceptions.InvalidSchema,
        requests.exceptions.MissingSchema,
    ) as exc:
        raise InvalidInput(
            f"{VENDOR}: invalid address ({type(exc).__name__})", details={"vendor": VENDOR}
        ) from None
    except requests.Timeout as exc:
        raise UpstreamTimeout(
            f"{VENDOR}: {type(exc).__name__}", details={"vendor": VENDOR}
        ) from None
    except requests.ConnectionError as exc:
        raise UpstreamUnavailable(
            f"{VENDOR}: {type(exc).__name__}", details={"vendor": VENDOR}
        ) from None
    except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
        # A body that is not the KV v2 shape we know (or not JSON at all).
        raise UpstreamRejected(
            f"{VENDOR}: unexpected response ({type(exc).__name__})", details={"vendor": VENDOR}
        ) from None


def _is_cas_mismatch(exc: hvac.exceptions.VaultError) -> bool:
    return any(CAS_MISMATCH in str(e) for e in exc.errors or [])


class VaultSecretBackend(Block, SecretStore):
    """Secret values in Vault KV v2 (the ``SecretStore`` role).

    Example:
        ```python
        from blocks.vault import VaultSecretBackend

        vault = VaultSecretBackend.load("vault")
        stored = vault.store_secret_value("harbor-ci", new_secret)  # StoredSecret, no value
        ```
    """

    _block_type_name = "IDP Vault Secret Backend"
    _description = "Secret values in HashiCorp Vault KV v2."

    addr: str = Field(..., description="Vault address, e.g. https://vault:8200 (VAULT_ADDR)")
    token: SecretStr = Field(..., description="Vault token (VAULT_TOKEN)")
    mount: str = Field("secret", description="Mount point of the KV v2 engine (VAULT_KV_MOUNT)")
    path_prefix: str = Field("idp", description="Key prefix under the mount for platform secrets")
    timeout_seconds: float = Field(10.0, gt=0, description="Timeout of one Vault call, seconds")

    _slot: ClientSlot = PrivateAttr(default_factory=ClientSlot)

    @classmethod
    def from_env(cls, settings: VaultSettings | None = None) -> VaultSecretBackend:
        """Build from VAULT_ADDR, VAULT_TOKEN and VAULT_KV_MOUNT."""
        settings = settings or VaultSettings.current()
        return cls(
            addr=required(settings.VAULT_ADDR, "VAULT_ADDR"),
            token=required(settings.VAULT_TOKEN, "VAULT_TOKEN"),
            mount=settings.VAULT_KV_MOUNT,
            timeout_seconds=settings.PROVIDER_TIMEOUT_SECONDS,
        )

    def get_client(self) -> hvac.Client:
        """This block's shared hvac client (built on first use; no network until a call)."""
        return self._slot.get(self._build_client, lambda c: False)

    def close(self) -> None:
        self._slot.close(lambda c: c.adapter.close())

    def _build_client(self) -> hvac.Client:
        return hvac.Client(
            url=self.addr,
            token=self.token.get_secret_value(),
            timeout=self.timeout_seconds,
            adapter=_StatusAdapter,
        )

    def _key(self, *parts: str) -> str:
        """``<prefix>/<parts...>``; each part is one plain path segment (no ``/``, no ``..``)."""
        for part in parts:
            if not SEGMENT.match(part):
                raise InvalidInput(
                    f"{VENDOR}: invalid key segment", details={"vendor": VENDOR, "segment": part}
                )
        return "/".join(p.strip("/") for p in (self.path_prefix, *parts) if p.strip("/"))

    def _stored(self, key: str, version: int) -> StoredSecret:
        return StoredSecret(backend=BACKEND, path=f"{self.mount}/{key}", version=version)

    # -- SecretStore -------------------------------------------------------------------
    def provision_secrets(
        self, environment_id: str, application_id: str, names: Sequence[str]
    ) -> list[StoredSecret]:
        """Create each secret with a random value, create-only (``cas=0``): existing keep."""
        kv = self.get_client().secrets.kv.v2
        stored = []
        with translate_errors():
            for name in dict.fromkeys(names):
                key = self._key("appenv", environment_id, name)
                try:
                    written = kv.create_or_update_secret(
                        path=key,
                        secret={"value": secrets.token_urlsafe(32)},
                        cas=0,
                        mount_point=self.mount,
                    )
                    version = int(written["data"]["version"])
                except hvac.exceptions.InvalidRequest as exc:
                    if not _is_cas_mismatch(exc):
                        raise
                    metadata = kv.read_secret_metadata(path=key, mount_point=self.mount)
                    version = int(metadata["data"]["current_version"])
                stored.append(self._stored(key, version))
        return stored

    def delete_secrets_if_present(self, environment_id: str, names: Sequence[str]) -> list[str]:
        """Delete every version and the metadata of each provisioned secret that exists.

        Vault answers the delete with 204 whether or not the key exists, so existence is
        read first, from the metadata (as ``provision_secrets`` does); the names read as
        existing are returned. A key deleted by someone else in between is still listed.
        """
        kv = self.get_client().secrets.kv.v2
        deleted = []
        with translate_errors():
            for name in dict.fromkeys(names):
                key = self._key("appenv", environment_id, name)
                try:
                    metadata = kv.read_secret_metadata(path=key, mount_point=self.mount)
                except hvac.exceptions.InvalidPath:
                    continue
                int(metadata["data"]["current_version"])  # the KV v2 shape, or UpstreamRejected
                kv.delete_metadata_and_all_versions(path=key, mount_point=self.mount)
                deleted.append(name)
        return deleted

    def store_secret_value(self, secret_id: str, value: SecretStr) -> StoredSecret:
        """Write ``value`` as a new version; a retry with the same value writes nothing."""
        kv = self.get_client().secrets.kv.v2
        key = self._key("secrets", secret_id)
        with translate_errors():
            current_version, current_value = self._current(key)
            if current_value is not None and current_value == value.get_secret_value():
                return self._stored(key, current_version)
            try:
                written = kv.create_or_update_secret(
                    path=key,
                    secret={"value": value.get_secret_value()},
                    cas=current_version,
                    mount_point=self.mount,
                )
            except hvac.exceptions.InvalidRequest as exc:
                if not _is_cas_mismatch(exc):
                    raise
                raise Conflict(
                    f"{VENDOR}: {key} changed while storing a new version",
                    details={"vendor": VENDOR, "path": key},
                ) from None
            return self._stored(key, int(written["data"]["version"]))

    def read_secret_value(self, secret_id: str) -> SecretStr:
        """The latest value stored by ``store_secret_value`` (``NotFound`` if none)."""
        key = self._key("secrets", secret_id)
        with translate_errors():
            _, value = self._current(key)
        if value is None:
            raise NotFound(f"{VENDOR}: no value at {key}", details={"vendor": VENDOR, "path": key})
        return SecretStr(value)

    def _current(self, key: str) -> tuple[int, str | None]:
        """(current version, live value or None); (0, None) when the key never existed."""
        kv = self.get_client().secrets.kv.v2
        try:
            read: dict[str, Any] = kv.read_secret_version(
                path=key, mount_point=self.mount, raise_on_deleted_version=False
            )
        except hvac.exceptions.InvalidPath:
            # Never written, or its latest version destroyed: metadata knows which.
            try:
                metadata = kv.read_secret_metadata(path=key, mount_point=self.mount)
            except hvac.exceptions.InvalidPath:
                return 0, None
            return int(metadata["data"]["current_version"]), None
        data = read["data"]
        value = (data.get("data") or {}).get("value")
        return int(data["metadata"]["version"]), value if isinstance(value, str) else None
