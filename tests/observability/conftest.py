"""Fixtures for the observability tests: the platform of tests/flows/platform, but their own.

Their own sandbox and control plane (so metric values and spans are this module's alone),
block documents saved under a unique name and selected through ``IDP_*_BLOCK`` (so the
``default`` documents of tests/flows/platform are never touched), and tracing configured once for
the session with an in-memory exporter, as an entrypoint would (``configure_tracing``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from blocks.github import GitHubProvider
from blocks.harbor import HarborProvider
from blocks.platform.control_plane import ControlPlane
from blocks.platform.execution_workers import ExecutionWorkers
from blocks.secret_endpoints import HttpSecretBackend
from blocks.settings import ProviderSettings
from blocks.vault import VaultSecretBackend
from core.settings import reset_settings
from core.telemetry import configure_tracing, flush_tracing
from sandbox.run import Sandbox
from tests.flows.platform.conftest import ROUTED_ROLES, platform_env
from tests.flows.platform.support import ControlPlaneServer, Domain, unique
from tests.services.platform.control_plane.live import LiveServer


@dataclass
class Platform:
    sandbox: Sandbox
    control_plane: ControlPlaneServer
    domain: Domain
    blocks: dict[str, str]


@pytest.fixture(scope="session")
def span_exporter(prefect_harness: None) -> InMemorySpanExporter:
    """Every span of the session from here on (tests clear it before they act)."""
    from prefect.settings import get_current_settings

    exporter = InMemorySpanExporter()
    prefect_api = get_current_settings().api.url
    configure_tracing("idp-tests", exporters=[exporter], skip_urls=[prefect_api or ""])
    return exporter


@pytest.fixture
def spans(span_exporter: InMemorySpanExporter) -> Iterator[InMemorySpanExporter]:
    span_exporter.clear()
    yield span_exporter
    flush_tracing()
    span_exporter.clear()


@pytest.fixture(scope="session")
def obs_sandbox() -> Iterator[Sandbox]:
    with Sandbox() as running:
        yield running


@pytest.fixture(scope="session")
def obs_control_plane(
    span_exporter: InMemorySpanExporter, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControlPlaneServer]:
    """Created once tracing is on, as in a traced process (its app gets server spans)."""
    path = tmp_path_factory.mktemp("obs-control-plane") / "control-plane.db"
    server = ControlPlaneServer(f"sqlite:///{path}").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def obs_blocks(
    prefect_harness: None, obs_sandbox: Sandbox, obs_control_plane: ControlPlaneServer
) -> dict[str, str]:
    """Block documents of this directory only, and the variables that select them."""
    name = unique("obs")
    settings = ProviderSettings(**platform_env(obs_sandbox, obs_control_plane.url))  # type: ignore[arg-type]
    GitHubProvider.from_env(settings).save(name)
    HarborProvider.from_env(settings).save(name)
    VaultSecretBackend.from_env(settings).save(name)
    HttpSecretBackend.from_env(settings).save(name)
    ControlPlane(url=obs_control_plane.url).save(name)
    return {
        "IDP_GIT_BLOCK": f"idp-github/{name}",
        "IDP_REGISTRY_BLOCK": f"idp-harbor/{name}",
        "IDP_SECRET_BACKEND_BLOCK": f"idp-vault-secret-backend/{name}",
        "IDP_SECRET_BINDINGS_BLOCK": f"idp-http-secret-backend/{name}",
        "IDP_GITOPS_BLOCK": f"idp-http-secret-backend/{name}",
        "IDP_CONTROL_PLANE_BLOCK": f"idp-control-plane/{name}",
    }


@pytest.fixture
def platform(
    obs_blocks: dict[str, str],
    obs_sandbox: Sandbox,
    obs_control_plane: ControlPlaneServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Platform]:
    """The environment a flow-run process would have, pointing at this directory's servers."""
    env = {**platform_env(obs_sandbox, obs_control_plane.url), **obs_blocks}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    reset_settings()
    yield Platform(
        obs_sandbox, obs_control_plane, Domain(obs_control_plane, obs_sandbox), obs_blocks
    )
    for server in obs_sandbox.servers.values():
        server.faults.clear()


@pytest.fixture(scope="session")
def obs_workers(
    span_exporter: InMemorySpanExporter,
    obs_blocks: dict[str, str],
    obs_sandbox: Sandbox,
    obs_control_plane: ControlPlaneServer,
) -> Iterator[str]:
    """execution-workers configured like a deployment, and its block saved (same name)."""
    from services.platform.execution_workers.app import create_app
    from services.platform.execution_workers.settings import ExecutionWorkersSettings

    settings = ExecutionWorkersSettings(**platform_env(obs_sandbox, obs_control_plane.url))  # type: ignore[arg-type]
    with LiveServer(create_app(settings)) as server:
        ExecutionWorkers(url=server.url).save(obs_blocks["IDP_GIT_BLOCK"].split("/")[1])
        yield server.url


@pytest.fixture
def routed(platform: Platform, obs_workers: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Side effects of the flows go through execution-workers (its URL is returned)."""
    name = platform.blocks["IDP_GIT_BLOCK"].split("/")[1]
    for variable in ROUTED_ROLES:
        monkeypatch.setenv(variable, f"idp-execution-workers/{name}")
    reset_settings()
    return obs_workers
