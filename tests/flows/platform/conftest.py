"""Fixtures for whole-flow tests: the sandbox, a real control plane, blocks in Prefect.

Session-scoped servers (slow to start; tests keep apart by unique ids): the four sandbox
servers (``sandbox.run.Sandbox``), control-plane-api (``create_app`` + uvicorn in a
thread, SQLite in a temporary directory) and the Prefect test harness with block
documents named ``default`` saved in it, so flows load their blocks exactly as in
production (``Block.aload(IDP_*_BLOCK)``). The environment is set per test (the autouse
fixture of ``tests/conftest.py`` cleans it after each); faults are cleared after each.
"""

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
from tests.flows.platform.support import ControlPlaneServer, Domain, unique

# The roles a deployment routes through execution-workers (every one but the registry's).
ROUTED_ROLES = (
    "IDP_GIT_BLOCK",
    "IDP_SECRET_BACKEND_BLOCK",
    "IDP_SECRET_BINDINGS_BLOCK",
    "IDP_GITOPS_BLOCK",
)
# Retry delays in tests: a 0.5 s backoff becomes 5 ms.
RETRY_DELAY_SCALE = "0.01"


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as running:
        yield running


def _start_control_plane(factory: pytest.TempPathFactory) -> ControlPlaneServer:
    path = factory.mktemp("control-plane") / "control-plane.db"
    return ControlPlaneServer(f"sqlite:///{path}").start()


@pytest.fixture(scope="session")
def control_plane_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlaneServer]:
    server = _start_control_plane(tmp_path_factory)
    yield server
    server.stop()


def platform_env(sandbox: Sandbox, control_plane_url: str) -> dict[str, str]:
    return {
        **sandbox.env(),
        "CONTROL_PLANE_URL": control_plane_url,
        "IDP_RETRY_DELAY_SCALE": RETRY_DELAY_SCALE,
    }


@pytest.fixture(scope="session")
def saved_blocks(
    prefect_harness: None, sandbox: Sandbox, control_plane_server: ControlPlaneServer
) -> None:
    """The production block documents (``<type>/default``), pointing at the sandbox."""
    settings = ProviderSettings(**platform_env(sandbox, control_plane_server.url))  # type: ignore[arg-type]
    GitHubProvider.from_env(settings).save("default", overwrite=True)
    HarborProvider.from_env(settings).save("default", overwrite=True)
    VaultSecretBackend.from_env(settings).save("default", overwrite=True)
    HttpSecretBackend.from_env(settings).save("default", overwrite=True)
    ControlPlane(url=control_plane_server.url).save("default", overwrite=True)


@pytest.fixture(autouse=True)
def idp_env(
    saved_blocks: None,
    sandbox: Sandbox,
    control_plane_server: ControlPlaneServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[None]:
    """Each flow test sees the sandbox's variables and tiny retry delays; no fault leaks."""
    for name, value in platform_env(sandbox, control_plane_server.url).items():
        monkeypatch.setenv(name, value)
    reset_settings()
    yield
    for server in sandbox.servers.values():
        server.faults.clear()


@pytest.fixture
def domain(control_plane_server: ControlPlaneServer, sandbox: Sandbox) -> Domain:
    return Domain(control_plane_server, sandbox)


@pytest.fixture
def own_control_plane(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ControlPlaneServer]:
    """A control plane of this test only, routed to by ``IDP_CONTROL_PLANE_BLOCK``
    (for tests that must see exactly their own secrets, like the sweep's "due" list)."""
    server = _start_control_plane(tmp_path_factory)
    name = unique("cp")
    ControlPlane(url=server.url).save(name, overwrite=True)
    monkeypatch.setenv("IDP_CONTROL_PLANE_BLOCK", f"idp-control-plane/{name}")
    reset_settings()
    yield server
    server.stop()
