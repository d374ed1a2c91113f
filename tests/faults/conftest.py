"""Fixtures of the fault-injection suite: the sandbox, a restartable control plane and the
Prefect test harness, with this suite's own block documents (``faults``), so nothing here
touches the ``default`` documents other suites save in the same session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from blocks.github import GitHubProvider
from blocks.harbor import HarborProvider
from blocks.platform.control_plane import ControlPlane
from blocks.secret_endpoints import HttpSecretBackend
from blocks.settings import ProviderSettings
from blocks.vault import VaultSecretBackend
from core.settings import reset_settings
from sandbox.run import Sandbox
from tests.faults.support import RestartableControlPlane
from tests.flows.platform.support import Domain

BLOCK_NAME = "faults"
# Production backoff (0.5, 1, 2, 4 s for providers) scaled down: retries still take long
# enough to matter, as they would against a real outage. Tests that outlast an outage on
# purpose raise it.
RETRY_DELAY_SCALE = 0.02


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as running:
        yield running


@pytest.fixture(scope="session")
def control_plane(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RestartableControlPlane]:
    path = tmp_path_factory.mktemp("faults-control-plane") / "control-plane.db"
    server = RestartableControlPlane(f"sqlite:///{path}").start()
    yield server
    server.stop()


def platform_env(sandbox: Sandbox, control_plane: RestartableControlPlane) -> dict[str, str]:
    return {
        **sandbox.env(),
        "CONTROL_PLANE_URL": control_plane.url,
        "IDP_RETRY_DELAY_SCALE": str(RETRY_DELAY_SCALE),
        "IDP_GIT_BLOCK": f"idp-github/{BLOCK_NAME}",
        "IDP_REGISTRY_BLOCK": f"idp-harbor/{BLOCK_NAME}",
        "IDP_SECRET_BACKEND_BLOCK": f"idp-vault-secret-backend/{BLOCK_NAME}",
        "IDP_SECRET_BINDINGS_BLOCK": f"idp-http-secret-backend/{BLOCK_NAME}",
        "IDP_GITOPS_BLOCK": f"idp-http-secret-backend/{BLOCK_NAME}",
        "IDP_CONTROL_PLANE_BLOCK": f"idp-control-plane/{BLOCK_NAME}",
        # A provider call gives up after 2 s here (10 s in production), so the "slower
        # than the timeout" cases stay short.
        "PROVIDER_TIMEOUT_SECONDS": "2",
    }


@pytest.fixture(scope="session")
def saved_blocks(
    prefect_harness: None, sandbox: Sandbox, control_plane: RestartableControlPlane
) -> None:
    settings = ProviderSettings(**platform_env(sandbox, control_plane))  # type: ignore[arg-type]
    GitHubProvider.from_env(settings).save(BLOCK_NAME, overwrite=True)
    HarborProvider.from_env(settings).save(BLOCK_NAME, overwrite=True)
    VaultSecretBackend.from_env(settings).save(BLOCK_NAME, overwrite=True)
    HttpSecretBackend.from_env(settings).save(BLOCK_NAME, overwrite=True)
    ControlPlane(url=control_plane.url, timeout_seconds=5).save(BLOCK_NAME, overwrite=True)


@pytest.fixture(autouse=True)
def fault_env(
    saved_blocks: None,
    sandbox: Sandbox,
    control_plane: RestartableControlPlane,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[None]:
    for name, value in platform_env(sandbox, control_plane).items():
        monkeypatch.setenv(name, value)
    reset_settings()
    yield
    for server in sandbox.servers.values():
        server.faults.clear()


@pytest.fixture
def domain(control_plane: RestartableControlPlane, sandbox: Sandbox) -> Domain:
    return Domain(control_plane, sandbox)
