"""Fixtures of the security suite: the platform with every credential set and random.

Unlike the other suites, every secret here is unique to the session and unguessable
(sandbox GitHub and Vault tokens, ``INTERNAL_AUTH_TOKEN`` required by the control plane
and the secret endpoints), so a search for it cannot hit anything but a leak. Block
documents are saved under ``security`` and selected through ``IDP_*_BLOCK``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from blocks.github import GitHubProvider
from blocks.harbor import HarborProvider
from blocks.platform.control_plane import ControlPlane
from blocks.secret_endpoints import HttpSecretBackend
from blocks.settings import ProviderSettings
from blocks.vault import VaultSecretBackend
from core.internal_auth import INTERNAL_TOKEN_HEADER
from core.settings import reset_settings
from sandbox.run import Sandbox
from services.platform.control_plane.app import create_app
from services.platform.control_plane.settings import ControlPlaneSettings
from tests.flows.platform.support import ControlPlaneServer, Domain

BLOCK_NAME = "security"
INTERNAL_TOKEN = f"internal-{secrets.token_urlsafe(18)}"
GITHUB_TOKEN = f"ghp_{secrets.token_hex(18)}"
VAULT_TOKEN = f"hvs.{secrets.token_urlsafe(18)}"


class SecuredControlPlane(ControlPlaneServer):
    """control-plane-api requiring ``X-Internal-Token``; ``client()`` sends it."""

    def __init__(self, database_path: Path) -> None:
        self.database_path = database_path
        super().__init__(f"sqlite:///{database_path}")
        settings = ControlPlaneSettings(
            DATABASE_URL=self.database_url, INTERNAL_AUTH_TOKEN=SecretStr(INTERNAL_TOKEN)
        )
        self.app = create_app(settings, launcher=self.launcher)

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, timeout=10, headers={INTERNAL_TOKEN_HEADER: INTERNAL_TOKEN}
        )


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(
        internal_token=INTERNAL_TOKEN, github_token=GITHUB_TOKEN, vault_token=VAULT_TOKEN
    ) as running:
        yield running


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredControlPlane]:
    path = tmp_path_factory.mktemp("security-control-plane") / "control-plane.db"
    server = SecuredControlPlane(path).start()
    yield server  # type: ignore[misc]
    server.stop()


def platform_env(sandbox: Sandbox, control_plane: ControlPlaneServer) -> dict[str, str]:
    return {
        **sandbox.env(),  # includes INTERNAL_AUTH_TOKEN
        "CONTROL_PLANE_URL": control_plane.url,
        "IDP_RETRY_DELAY_SCALE": "0.01",
        "IDP_GIT_BLOCK": f"idp-github/{BLOCK_NAME}",
        "IDP_REGISTRY_BLOCK": f"idp-harbor/{BLOCK_NAME}",
        "IDP_SECRET_BACKEND_BLOCK": f"idp-vault-secret-backend/{BLOCK_NAME}",
        "IDP_SECRET_BINDINGS_BLOCK": f"idp-http-secret-backend/{BLOCK_NAME}",
        "IDP_GITOPS_BLOCK": f"idp-http-secret-backend/{BLOCK_NAME}",
        "IDP_CONTROL_PLANE_BLOCK": f"idp-control-plane/{BLOCK_NAME}",
    }


@pytest.fixture(scope="session")
def saved_blocks(
    prefect_harness: None, sandbox: Sandbox, control_plane: SecuredControlPlane
) -> None:
    settings = ProviderSettings(**platform_env(sandbox, control_plane))  # type: ignore[arg-type]
    GitHubProvider.from_env(settings).save(BLOCK_NAME, overwrite=True)
    HarborProvider.from_env(settings).save(BLOCK_NAME, overwrite=True)
    VaultSecretBackend.from_env(settings).save(BLOCK_NAME, overwrite=True)
    HttpSecretBackend.from_env(settings).save(BLOCK_NAME, overwrite=True)
    ControlPlane(url=control_plane.url, internal_token=SecretStr(INTERNAL_TOKEN)).save(
        BLOCK_NAME, overwrite=True
    )


@pytest.fixture
def platform(
    saved_blocks: None,
    sandbox: Sandbox,
    control_plane: SecuredControlPlane,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Domain]:
    """The platform's environment for in-process flows; the domain to build state with."""
    for name, value in platform_env(sandbox, control_plane).items():
        monkeypatch.setenv(name, value)
    reset_settings()
    yield Domain(control_plane, sandbox)
    for server in sandbox.servers.values():
        server.faults.clear()
