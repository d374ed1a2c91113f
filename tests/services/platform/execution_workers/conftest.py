"""Fixtures: the sandbox (session), a real control plane in a thread (session), and an
execution-workers app over them per test (TestClient) or served by uvicorn."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from sandbox.run import Sandbox
from services.platform.control_plane.app import create_app as create_control_plane
from services.platform.control_plane.settings import ControlPlaneSettings
from services.platform.execution_workers.app import create_app
from services.platform.execution_workers.settings import ExecutionWorkersSettings
from tests.services.platform.control_plane.launchers import RecordingLauncher
from tests.services.platform.control_plane.live import LiveServer
from tests.services.platform.execution_workers.support import workers_settings


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as running:
        yield running


@pytest.fixture(autouse=True)
def _no_fault_leaks(sandbox: Sandbox) -> Iterator[None]:
    yield
    for server in sandbox.servers.values():
        server.faults.clear()


@pytest.fixture(scope="session")
def control_plane_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """control-plane-api on SQLite, served in a thread, for the events workers report."""
    path: Path = tmp_path_factory.mktemp("cp") / "control-plane.db"
    app = create_control_plane(
        ControlPlaneSettings(DATABASE_URL=f"sqlite:///{path}"), launcher=RecordingLauncher()
    )
    with LiveServer(app) as server:
        yield server.url


@pytest.fixture
def settings(sandbox: Sandbox, control_plane_url: str) -> ExecutionWorkersSettings:
    return workers_settings(sandbox, control_plane_url)


@pytest.fixture
def app(settings: ExecutionWorkersSettings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client
