"""Fixtures for the control plane: the same tests run on SQLite and on PostgreSQL.

PostgreSQL: the server on 127.0.0.1:5432 (trust auth, user postgres), or, without one, a
PostgreSQL the run starts itself (idp/postgres.py). Each test run creates its own
database ``idp_test_<random>`` and drops it at the end; tests share it and start from
empty tables.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from idp.databases import PG_HOST, PG_PORT, fresh_postgres_databases, postgres_answers
from idp.postgres import running_postgres
from idp.stack import free_port
from services.platform.control_plane.app import create_app
from services.platform.control_plane.db import make_engine, upgrade_to_head
from services.platform.control_plane.settings import ControlPlaneSettings
from tests.services.platform.control_plane.launchers import RecordingLauncher

TABLES = (
    "workflow_compensation, idempotency_record, workflow_run, domain_event, secret_binding, "
    "secret, application_environment, application"
)


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh database for this test run, dropped afterwards: on the machine's server
    when one answers on 127.0.0.1:5432, else on a PostgreSQL of the run's own."""
    with contextlib.ExitStack() as stack:
        host, port = PG_HOST, PG_PORT
        if not postgres_answers():
            folder = tmp_path_factory.mktemp("postgres")
            server = stack.enter_context(running_postgres(folder, free_port()))
            host, port = "127.0.0.1", server.port
        urls = stack.enter_context(fresh_postgres_databases("test", host=host, port=port))
        yield urls["test"]


def _empty_postgres(url: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            exists = connection.execute(text("SELECT to_regclass('application')")).scalar()
            if exists:
                connection.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once; tests start from a copy (same schema, less time)."""
    path = tmp_path_factory.mktemp("template") / "control-plane.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade_to_head(engine)
    engine.dispose()
    return path


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test's database, empty at head. Tests whose behaviour cannot depend on the
    database (request validation) narrow it with ``SQLITE_ONLY``."""
    if request.param == "sqlite":
        path = tmp_path / "control-plane.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_url")
    _empty_postgres(url)
    return url


@pytest.fixture
def launcher() -> RecordingLauncher:
    return RecordingLauncher()


@pytest.fixture
def settings(database_url: str) -> ControlPlaneSettings:
    return ControlPlaneSettings(DATABASE_URL=database_url)


@pytest.fixture
def app(settings: ControlPlaneSettings, launcher: RecordingLauncher) -> FastAPI:
    return create_app(settings, launcher=launcher)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client
