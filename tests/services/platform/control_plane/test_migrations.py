"""The schema's upgrade path: an empty database reaches head on SQLite and PostgreSQL,
the migrated schema matches the models exactly, and the path runs down and up again."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

import services.platform.control_plane.models  # noqa: F401  (tables on the metadata)
from services.platform.control_plane.app import create_app
from services.platform.control_plane.db import alembic_config, make_engine, upgrade_to_head
from services.platform.control_plane.settings import ControlPlaneSettings
from tests.services.platform.control_plane.launchers import RecordingLauncher

TABLES = {
    "application",
    "application_environment",
    "secret",
    "secret_binding",
    "domain_event",
    "workflow_run",
    "idempotency_record",
    "workflow_compensation",
}


def admin_url(url: str) -> str:
    """The server's maintenance database, where databases are created and dropped."""
    return str(make_url(url).set(database="postgres"))


@pytest.fixture
def empty_postgres(postgres_url: str) -> Iterator[str]:
    """Another fresh database, beside the one the API tests share."""
    name = f"{make_url(postgres_url).database}_mig_{secrets.token_hex(3)}"
    admin = create_engine(admin_url(postgres_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield str(make_url(postgres_url).set(database=name))
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'nested' / 'dir' / 'control-plane.db'}"
    url: str = request.getfixturevalue("empty_postgres")
    return url


def test_empty_database_upgrades_to_head_matching_the_models(empty_database: str) -> None:
    engine = make_engine(empty_database)
    try:
        upgrade_to_head(engine)
        head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
        with engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) >= TABLES
            version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
            assert version == head
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, SQLModel.metadata) == []

        command.downgrade(alembic_config(engine), "base")
        with engine.connect() as connection:
            assert not TABLES & set(inspect(connection).get_table_names())
        upgrade_to_head(engine)
        upgrade_to_head(engine)  # at head already: nothing to do
        with engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) >= TABLES
    finally:
        engine.dispose()


def test_the_compensation_log_migrates_down_and_up_alone(empty_database: str) -> None:
    """0002 adds only the compensation log: down to 0001 drops it and keeps every other
    table and its rows; up again brings it back, empty."""
    engine = make_engine(empty_database)
    config = alembic_config(engine)
    try:
        command.upgrade(config, "0001")
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO workflow_run (flow_run_id, workflow, result, duration_seconds,"
                    " retries, reported_at) VALUES ('run-1', 'SecretRotation', 'success', 1.5,"
                    " 0, CURRENT_TIMESTAMP)"
                )
            )
        upgrade_to_head(engine)
        with engine.begin() as connection:
            assert "workflow_compensation" in inspect(connection).get_table_names()
            connection.execute(
                text(
                    "INSERT INTO workflow_compensation (id, flow_run_id, key, step, undo,"
                    " arguments, recorded_at) VALUES (:id, 'run-1', '0:Step:1', 'Step', 'Undo',"
                    " '{}', CURRENT_TIMESTAMP)"
                ),
                {"id": uuid.uuid4().hex},
            )

        command.downgrade(config, "0001")
        with engine.connect() as connection:
            tables = set(inspect(connection).get_table_names())
            assert "workflow_compensation" not in tables
            assert tables >= TABLES - {"workflow_compensation"}
            runs = connection.execute(text("SELECT flow_run_id FROM workflow_run")).all()
            assert [tuple(r) for r in runs] == [("run-1",)]
            version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
            assert version == "0001"

        upgrade_to_head(engine)
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT count(*) FROM workflow_compensation")).scalar()
            assert rows == 0
    finally:
        engine.dispose()


def test_default_database_is_a_sqlite_file_under_the_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    app = create_app(ControlPlaneSettings(IDP_DATA_DIR=data_dir), launcher=RecordingLauncher())
    with TestClient(app) as client:
        assert client.get("/ready").status_code == 200
    assert (data_dir / "control-plane.db").is_file()


@pytest.mark.postgres
def test_database_gone_is_503_upstream_unavailable(empty_postgres: str) -> None:
    app = create_app(
        ControlPlaneSettings(DATABASE_URL=empty_postgres), launcher=RecordingLauncher()
    )
    with TestClient(app) as client:
        assert client.get("/ready").status_code == 200
        name = make_url(empty_postgres).database
        admin = create_engine(admin_url(empty_postgres), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
        response = client.get("/ready")
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "upstream_unavailable"
        assert client.get("/health").status_code == 200
        # Commands and reads say so too, with a retryable code rather than a bare 500.
        command = client.post("/api/v1/applications", json={"name": "payments", "team": "pay"})
        assert command.status_code == 503
        assert command.json()["error"]["code"] == "upstream_unavailable"
