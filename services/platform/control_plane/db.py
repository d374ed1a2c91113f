"""The control plane's database: engine, schema migrations, sessions.

SQLite (a file under ``IDP_DATA_DIR``) by default and PostgreSQL through
``DATABASE_URL``. The schema is owned by the alembic migrations in ``migrations/``;
``create_app`` upgrades to head before serving, so a new version of the service brings
its database along.

Writes that must not race (a rotation request, a status transition, a lock) are single
conditional ``UPDATE ... WHERE`` statements whose rowcount decides; on SQLite the first
write of a transaction takes the database write lock, on PostgreSQL the row lock, and
both re-check the condition after the winner commits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_SECONDS = 30
_AFTER_COMMIT = "after_commit_callbacks"


# Connections per process: a request holds one from its handler to its cleanup, and
# ``deps.get_session`` lets at most ``session_capacity`` requests hold one (the rest wait
# on the event loop, not in a worker thread), so no handler ever waits for the pool.
POOL_SIZE = 20
MAX_OVERFLOW = 20
# Kept out of the sessions' share: the readiness check's connection.
RESERVED_CONNECTIONS = 2


def session_capacity() -> int:
    """How many requests may hold a session at once (the pool minus the reserve)."""
    return POOL_SIZE + MAX_OVERFLOW - RESERVED_CONNECTIONS


def make_engine(url: str) -> Engine:
    """An engine for ``url``; for a SQLite file, create its directory and tune it."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(
            url, pool_pre_ping=True, pool_size=POOL_SIZE, max_overflow=MAX_OVERFLOW
        )

    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
        pool_size=POOL_SIZE,
        max_overflow=MAX_OVERFLOW,
    )

    @event.listens_for(engine, "connect")
    def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # WAL: readers never wait for the writer; the busy timeout queues writers.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_SECONDS * 1000}")
        cursor.close()

    return engine


def alembic_config(engine: Engine) -> Config:
    """Alembic configured for this package's migrations, bound to ``engine``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    config.attributes["engine"] = engine
    return config


def upgrade_to_head(engine: Engine) -> None:
    """Apply every migration the database has not seen yet (idempotent)."""
    command.upgrade(alembic_config(engine), "head")


def database_answers(engine: Engine) -> bool:
    """True when a trivial query succeeds (the readiness check)."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error means "not ready"
        logger.warning("database check failed: %s", type(exc).__name__)
        return False
    return True


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions that run ``call_after_commit`` callbacks once their transaction commits."""
    factory = sessionmaker(bind=engine, class_=Session, expire_on_commit=False)

    @event.listens_for(factory, "after_commit")
    def _run_callbacks(session: Session) -> None:
        for callback in session.info.pop(_AFTER_COMMIT, []):
            callback()

    @event.listens_for(factory, "after_rollback")
    def _drop_callbacks(session: Session) -> None:
        session.info.pop(_AFTER_COMMIT, None)

    return factory


def call_after_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run ``callback`` only if the current transaction commits (metrics count facts)."""
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)
