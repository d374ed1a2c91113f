"""Alembic environment of the control plane.

``services.platform.control_plane.db.upgrade_to_head`` passes its engine in
``config.attributes["engine"]``; the ``alembic`` command line (for new revisions) uses
``DATABASE_URL`` / ``IDP_DATA_DIR`` through the service's settings instead.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine
from sqlmodel import SQLModel

import services.platform.control_plane.models  # noqa: F401  (registers the tables)
from services.platform.control_plane.db import make_engine
from services.platform.control_plane.settings import ControlPlaneSettings

target_metadata = SQLModel.metadata


def _engine() -> Engine:
    engine = context.config.attributes.get("engine")
    if isinstance(engine, Engine):
        return engine
    return make_engine(ControlPlaneSettings.current().database_url)


def run_migrations_online() -> None:
    engine = _engine()
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported")
run_migrations_online()
