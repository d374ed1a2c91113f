"""The HTTP secret backend: the seed's four endpoint variables, spoken with httpx.

Seed 002 delegates secret provisioning, secret bindings, the GitOps check and the
post-rotation binding update to external HTTP endpoints. This block is the client of
those endpoints (and of the ``…/delete`` calls that undo provisioning and bindings);
their JSON shapes are defined in ``docs/secret-endpoints.md`` (and
served locally by ``sandbox/secret_endpoints.py``). One httpx client per block instance
is built on first use and reused (see ``shared/research/http-client.md``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import httpx
from prefect.blocks.core import Block
from pydantic import BaseModel, Field, PrivateAttr, SecretStr

from blocks._http import (
    ClientSlot,
    parse_json,
    parse_model,
    raise_for_response,
    shared_ssl_context,
    translate_http_errors,
)
from blocks.models import BindingRecord, BindingSpec, GitOpsStatus, StoredSecret
from blocks.ports import GitOpsVerifier, SecretBindings, SecretStore
from blocks.settings import SecretEndpointSettings
from core.errors import InvalidInput
from core.internal_auth import internal_auth_headers

VENDOR = "secret-endpoints"
BACKEND = "http"
ENDPOINT_VARS = {
    "appenv_secrets_endpoint": "APPENV_SECRETS_ENDPOINT",
    "appenv_secret_bindings_endpoint": "APPENV_SECRET_BINDINGS_ENDPOINT",
    "appenv_gitops_verify_endpoint": "APPENV_GITOPS_VERIFY_ENDPOINT",
    "secret_bindings_update_endpoint": "SECRET_BINDINGS_UPDATE_ENDPOINT",
}


def _platform_code(response: httpx.Response) -> str | None:
    """The ``code`` of the platform's error body ``{"error": {"code", ...}}``."""
    return str(response.json()["error"]["code"])


@contextmanager
def translate_errors() -> Iterator[None]:
    """The one place where httpx errors of the secret endpoints become domain errors."""
    with translate_http_errors(VENDOR):
        yield


class _Provisioned(BaseModel):
    name: str
    path: str
    version: int
    created: bool = False


class _ProvisionResponse(BaseModel):
    environment_id: str
    secrets: list[_Provisioned]


class _DeletedResponse(BaseModel):
    environment_id: str
    deleted: list[str]


class _StoredResponse(BaseModel):
    secret_id: str
    path: str
    version: int


class _BindingsResponse(BaseModel):
    bindings: list[BindingRecord]


class HttpSecretBackend(Block, SecretStore, SecretBindings, GitOpsVerifier):
    """Secrets, bindings and GitOps checks through the seed's HTTP endpoints.

    Example:
        ```python
        from blocks.secret_endpoints import HttpSecretBackend

        backend = HttpSecretBackend.load("secret-endpoints")
        stored = backend.provision_secrets("env-1", "app-1", ["db-password"])
        ```
    """

    _block_type_name = "IDP HTTP Secret Backend"
    _description = "Secret provisioning, bindings and GitOps checks over the seed's endpoints."

    appenv_secrets_endpoint: str | None = Field(
        None,
        description="APPENV_SECRETS_ENDPOINT: provisions an environment's secrets; "
        "rotated values go to <this URL>/values",
    )
    appenv_secret_bindings_endpoint: str | None = Field(
        None, description="APPENV_SECRET_BINDINGS_ENDPOINT: creates/updates secret bindings"
    )
    appenv_gitops_verify_endpoint: str | None = Field(
        None, description="APPENV_GITOPS_VERIFY_ENDPOINT: asks whether GitOps has reconciled"
    )
    secret_bindings_update_endpoint: str | None = Field(
        None, description="SECRET_BINDINGS_UPDATE_ENDPOINT: points bindings at a rotated value"
    )
    internal_token: SecretStr | None = Field(
        None, description="INTERNAL_AUTH_TOKEN, sent as X-Internal-Token when set"
    )
    timeout_seconds: float = Field(10.0, gt=0, description="Timeout of one HTTP call, seconds")

    _slot: ClientSlot = PrivateAttr(default_factory=ClientSlot)

    @classmethod
    def from_env(
        cls,
        settings: SecretEndpointSettings | None = None,
        *,
        require: Sequence[str] = tuple(ENDPOINT_VARS.values()),
    ) -> HttpSecretBackend:
        """Build from the environment; ``require`` names the variables that must be set."""
        settings = settings or SecretEndpointSettings.current()
        values = {field: getattr(settings, var) for field, var in ENDPOINT_VARS.items()}
        for field, var in ENDPOINT_VARS.items():
            if var in require and not values[field]:
                raise InvalidInput(f"{var} is not set", details={"variable": var})
        token = settings.INTERNAL_AUTH_TOKEN
        return cls(
            **values,
            internal_token=token if token is not None and token.get_secret_value() else None,
            timeout_seconds=settings.PROVIDER_TIMEOUT_SECONDS,
        )

    def get_client(self) -> httpx.Client:
        """This block's shared client (built on first use; rebuilt if someone closed it)."""
        return self._slot.get(self._build_client, lambda c: c.is_closed)

    def close(self) -> None:
        self._slot.close(lambda c: c.close())

    def _build_client(self) -> httpx.Client:
        headers = {"Accept": "application/json", **internal_auth_headers(self.internal_token)}
        return httpx.Client(
            timeout=self.timeout_seconds, headers=headers, verify=shared_ssl_context()
        )

    # -- SecretStore, SecretBindings, GitOpsVerifier ---------------------------------
    def provision_secrets(
        self, environment_id: str, application_id: str, names: Sequence[str]
    ) -> list[StoredSecret]:
        body = {
            "environment_id": environment_id,
            "application_id": application_id,
            "secrets": list(names),
        }
        data = self._post("appenv_secrets_endpoint", body)
        result = parse_model(_ProvisionResponse, data, VENDOR, "provision response")
        return [
            StoredSecret(backend=BACKEND, path=s.path, version=s.version) for s in result.secrets
        ]

    def store_secret_value(self, secret_id: str, value: SecretStr) -> StoredSecret:
        body = {"secret_id": secret_id, "value": value.get_secret_value()}
        data = self._post("appenv_secrets_endpoint", body, suffix="/values")
        stored = parse_model(_StoredResponse, data, VENDOR, "store response")
        return StoredSecret(backend=BACKEND, path=stored.path, version=stored.version)

    def create_secret_bindings(self, bindings: Sequence[BindingRecord]) -> list[BindingRecord]:
        items = [b.model_dump(exclude_none=True) for b in bindings]
        data = self._post("appenv_secret_bindings_endpoint", {"bindings": items})
        return parse_model(_BindingsResponse, data, VENDOR, "bindings response").bindings

    def verify_gitops(self, environment_id: str, repository: str) -> GitOpsStatus:
        body = {"environment_id": environment_id, "repository": repository}
        data = self._post("appenv_gitops_verify_endpoint", body)
        return parse_model(GitOpsStatus, data, VENDOR, "gitops response")

    def update_secret_bindings(
        self, secret_id: str, stored: StoredSecret, bindings: Sequence[BindingSpec]
    ) -> list[BindingRecord]:
        body = {
            "secret_id": secret_id,
            "stored": stored.model_dump(),
            "bindings": [b.model_dump() for b in bindings],
        }
        data = self._post("secret_bindings_update_endpoint", body)
        return parse_model(_BindingsResponse, data, VENDOR, "bindings update response").bindings

    def delete_secrets_if_present(self, environment_id: str, names: Sequence[str]) -> list[str]:
        """``POST <APPENV_SECRETS_ENDPOINT>/delete``; the names that existed."""
        body = {"environment_id": environment_id, "secrets": list(names)}
        data = self._post("appenv_secrets_endpoint", body, suffix="/delete")
        return parse_model(_DeletedResponse, data, VENDOR, "delete response").deleted

    def delete_secret_bindings_if_present(
        self, bindings: Sequence[BindingRecord]
    ) -> list[BindingRecord]:
        """``POST <APPENV_SECRET_BINDINGS_ENDPOINT>/delete``; the bindings that existed."""
        keys = [b.model_dump(include={"secret_id", "environment_id", "target"}) for b in bindings]
        data = self._post("appenv_secret_bindings_endpoint", {"bindings": keys}, suffix="/delete")
        return parse_model(_BindingsResponse, data, VENDOR, "bindings delete response").bindings

    def _post(self, field: str, body: dict[str, Any], *, suffix: str = "") -> Any:
        url = getattr(self, field)
        if not url:
            var = ENDPOINT_VARS[field]
            raise InvalidInput(f"{var} is not configured", details={"variable": var})
        with translate_errors():
            response = self.get_client().post(url.rstrip("/") + suffix, json=body)
            raise_for_response(response, VENDOR, _platform_code)
            return parse_json(response, VENDOR)
