"""The execution-workers service as a provider block: the routed alternative to the
direct GitHub / secret-backend blocks.

``ExecutionWorkers`` implements ``GitProvider``, ``SecretStore``, ``SecretBindings`` and
``GitOpsVerifier`` by calling the
service's endpoints, so pointing ``IDP_GIT_BLOCK`` and ``IDP_SECRET_BACKEND_BLOCK`` at
``idp-execution-workers/<name>`` sends a workflow's side effects through the service
(which holds the provider credentials) instead of straight to the providers.

It does not implement ``RegistryProvider``: ``refresh_robot_secret`` must hand the new
robot secret back to its caller, which through the service means a secret in a response
body. The service instead rotates Harbor itself inside ``/secrets/bindings/update``
(``rotate_robot_secret`` below) and only ever answers where the value is stored. A
routed SecretRotation therefore keeps ``IDP_REGISTRY_BLOCK`` on the Harbor block; its
RotateSecret step sends the new value *in* (``store_secret_value``), never out.

Errors: the service's ``{"error": {"code", ...}}`` body is rebuilt into the
``core.errors`` class of that code (``error_for_code``), keeping ``details`` (e.g.
``retry_after``) and the HTTP status as ``upstream_status``; transport failures are
translated once, by ``blocks._http`` (refused → ``UpstreamUnavailable``, timeout →
``UpstreamTimeout``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import httpx
from prefect.blocks.core import Block
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr

from blocks._http import (
    ClientSlot,
    error_from_service,
    parse_json,
    parse_model,
    shared_ssl_context,
    translate_http_errors,
)
from blocks.models import (
    BindingRecord,
    BindingSpec,
    BranchProtectionInfo,
    GitOpsStatus,
    RepositoryInfo,
    RobotAccount,
    StoredSecret,
)
from blocks.platform.settings import DEFAULT_EXECUTION_WORKERS_URL, ExecutionWorkersClientSettings
from blocks.ports import GitOpsVerifier, GitProvider, SecretBindings, SecretStore
from core.errors import DomainError
from core.internal_auth import internal_auth_headers

VENDOR = "execution-workers"
FLOW_RUN_HEADER = "X-Flow-Run-Id"
M = TypeVar("M", bound=BaseModel)


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Files(_Answer):
    created: list[str]


class _Secrets(_Answer):
    secrets: list[StoredSecret]


class _DeletedRepository(_Answer):
    deleted: bool


class _DeletedSecrets(_Answer):
    deleted: list[str]


class _Bindings(_Answer):
    bindings: list[BindingRecord]


class SecretUpdate(_Answer):
    """What ``/secrets/bindings/update`` answers: where the value is, never the value."""

    secret_id: str
    stored: StoredSecret
    rotated: bool
    robot: RobotAccount | None = None
    bindings: list[BindingRecord] = Field(default_factory=list)


def _flow_run_id() -> str | None:
    """The calling flow run, so the service links (and de-duplicates) its events."""
    try:
        from prefect.runtime import flow_run

        run_id = flow_run.get_id()
    except Exception:  # outside Prefect, or a runtime without a run: no header
        return None
    return str(run_id) if run_id else None


class ExecutionWorkers(Block, GitProvider, SecretStore, SecretBindings, GitOpsVerifier):
    """Client of the execution-workers service; it plays every role but the registry's.

    Example:
        ```python
        from blocks.platform.execution_workers import ExecutionWorkers

        workers = ExecutionWorkers.load("default")  # or ExecutionWorkers.from_env()
        repo = workers.ensure_repository("appenv-payments-dev")
        ```
    """

    _block_type_name = "IDP Execution Workers"
    _description = "Routes repository and secret side effects through execution-workers."

    url: str = Field(
        DEFAULT_EXECUTION_WORKERS_URL,
        description="Base URL of execution-workers (EXECUTION_WORKERS_URL)",
    )
    internal_token: SecretStr | None = Field(
        None, description="Sent as X-Internal-Token when set (INTERNAL_AUTH_TOKEN)"
    )
    timeout_seconds: float = Field(
        60.0,
        gt=0,
        description="Timeout of one call, seconds; the service makes several provider calls "
        "per request, so keep it above their timeouts",
    )

    _slot: ClientSlot = PrivateAttr(default_factory=ClientSlot)

    @classmethod
    def from_env(cls, settings: ExecutionWorkersClientSettings | None = None) -> ExecutionWorkers:
        """Build from EXECUTION_WORKERS_URL and INTERNAL_AUTH_TOKEN."""
        settings = settings or ExecutionWorkersClientSettings.current()
        token = settings.INTERNAL_AUTH_TOKEN
        return cls(
            url=settings.EXECUTION_WORKERS_URL,
            internal_token=token if token is not None and token.get_secret_value() else None,
        )

    def get_client(self) -> httpx.Client:
        """This block's shared client on the service URL (built on first use)."""
        return self._slot.get(self._build_client, lambda c: c.is_closed)

    def close(self) -> None:
        self._slot.close(lambda c: c.close())

    def _build_client(self) -> httpx.Client:
        headers = {"Accept": "application/json", **internal_auth_headers(self.internal_token)}
        return httpx.Client(
            base_url=self.url.rstrip("/"),
            headers=headers,
            timeout=self.timeout_seconds,
            verify=shared_ssl_context(),
        )

    def _post(self, model: type[M], path: str, body: Mapping[str, Any]) -> M:
        run_id = _flow_run_id()
        headers = {FLOW_RUN_HEADER: run_id} if run_id else {}
        try:
            with translate_http_errors(VENDOR):
                response = self.get_client().post(path, json=dict(body), headers=headers)
        except DomainError as exc:
            # ``from None`` only hides httpx's exception; drop it, since its request holds
            # the body (a secret value, for ``store_secret_value``).
            exc.__context__ = None
            raise
        if not response.is_success:
            raise error_from_service(response, VENDOR)
        return parse_model(model, parse_json(response, VENDOR), VENDOR, f"{path} response")

    # -- GitProvider ------------------------------------------------------------------
    def ensure_repository(
        self, name: str, *, description: str = "", private: bool = True
    ) -> RepositoryInfo:
        body = {"name": name, "description": description, "private": private}
        return self._post(RepositoryInfo, "/github/repos", body)

    def ensure_branch_protection(
        self,
        repository: str,
        *,
        branch: str | None = None,
        required_approving_review_count: int = 1,
    ) -> BranchProtectionInfo:
        body = {
            "repository": repository,
            "branch": branch,
            "required_approving_review_count": required_approving_review_count,
        }
        return self._post(BranchProtectionInfo, "/appenv/branch-protection", body)

    def ensure_files(self, repository: str, files: Mapping[str, str], *, message: str) -> list[str]:
        body = {"repository": repository, "files": dict(files), "message": message}
        return self._post(_Files, "/github/repos/files", body).created

    def delete_repository_if_present(self, name: str) -> bool:
        return self._post(_DeletedRepository, "/github/repos/delete", {"name": name}).deleted

    # -- SecretStore, SecretBindings, GitOpsVerifier ---------------------------------
    def provision_secrets(
        self, environment_id: str, application_id: str, names: Sequence[str]
    ) -> list[StoredSecret]:
        body = {
            "environment_id": environment_id,
            "application_id": application_id,
            "secrets": list(names),
        }
        return self._post(_Secrets, "/appenv/secrets", body).secrets

    def create_secret_bindings(self, bindings: Sequence[BindingRecord]) -> list[BindingRecord]:
        if not bindings:
            return []
        items = [b.model_dump(exclude_none=True) for b in bindings]
        return self._post(_Bindings, "/appenv/secret-bindings", {"bindings": items}).bindings

    def verify_gitops(self, environment_id: str, repository: str) -> GitOpsStatus:
        body = {"environment_id": environment_id, "repository": repository}
        return self._post(GitOpsStatus, "/appenv/gitops-verify", body)

    def delete_secrets_if_present(self, environment_id: str, names: Sequence[str]) -> list[str]:
        body = {"environment_id": environment_id, "secrets": list(names)}
        return self._post(_DeletedSecrets, "/appenv/secrets/delete", body).deleted

    def delete_secret_bindings_if_present(
        self, bindings: Sequence[BindingRecord]
    ) -> list[BindingRecord]:
        if not bindings:
            return []
        keys = [b.model_dump(include={"secret_id", "environment_id", "target"}) for b in bindings]
        return self._post(_Bindings, "/appenv/secret-bindings/delete", {"bindings": keys}).bindings

    def store_secret_value(self, secret_id: str, value: SecretStr) -> StoredSecret:
        """The value goes in once; the answer (and this result) says only where it went."""
        source = {"kind": "value", "value": value.get_secret_value()}
        return self._update(secret_id, source, []).stored

    def update_secret_bindings(
        self, secret_id: str, stored: StoredSecret, bindings: Sequence[BindingSpec]
    ) -> list[BindingRecord]:
        source = {"kind": "stored", "stored": stored.model_dump()}
        return self._update(secret_id, source, bindings).bindings

    # -- the seed's one-call rotation --------------------------------------------------
    def rotate_robot_secret(
        self,
        secret_id: str,
        robot: str,
        *,
        project: str | None,
        rotation_id: str,
        bindings: Sequence[BindingSpec] = (),
    ) -> SecretUpdate:
        """The service rotates the Harbor robot, stores the value and updates ``bindings``.

        The new secret never leaves the service; ``rotation_id`` makes a repeat replay the
        first rotation instead of issuing another secret.
        """
        source = {
            "kind": "harbor-rotation",
            "robot": robot,
            "project": project,
            "rotation_id": rotation_id,
        }
        return self._update(secret_id, source, bindings)

    def _update(
        self, secret_id: str, source: Mapping[str, Any], bindings: Sequence[BindingSpec]
    ) -> SecretUpdate:
        body = {
            "secret_id": secret_id,
            "source": dict(source),
            "bindings": [b.model_dump() for b in bindings],
        }
        return self._post(SecretUpdate, "/secrets/bindings/update", body)
