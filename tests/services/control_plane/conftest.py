"""Fixtures for the control plane: the same tests run on SQLite and on PostgreSQL.

PostgreSQL: the server on 127.0.0.1:5432 (trust auth, user postgres). Each test run
creates its own database ``idp_test_<random>`` and drops it at the end; tests share it
and start from empty tables. Without a server there, the postgres cases are skipped.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from bench.database import PG_HOST, PG_PORT, postgres_answers
from core.settings import Settings
from services.control_plane.app import create_app
from services.control_plane.db import make_engine, upgrade_to_head
from services.control_plane.launcher import RecordingLauncher

PG_ADMIN_URL = f"postgresql+psycopg2://postgres@{PG_HOST}:{PG_PORT}/test"
TABLES = (
    "idempotency_record, workflow_run, domain_event, secret_binding, secret, "
    "application_environment, application"
)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh database for this test run, dropped afterwards."""
    if not postgres_answers():
        pytest.skip(f"no PostgreSQL answers on {PG_HOST}:{PG_PORT}")
    name = f"idp_test_{secrets.token_hex(6)}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+psycopg2://postgres@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


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
def settings(database_url: str) -> Settings:
    return Settings(DATABASE_URL=database_url)


@pytest.fixture
def app(settings: Settings, launcher: RecordingLauncher) -> FastAPI:
    return create_app(settings, launcher=launcher)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client
