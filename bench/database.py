"""The databases a benchmark's platform runs on.

At the full scale (thousands of runs created, deleted and executed in minutes) Prefect's
SQLite database locks for a minute at a time (``database is locked`` in the server log,
API calls time out): the README's scale-out advice is PostgreSQL, so the benchmark uses
it when one answers. ``--database sqlite`` keeps the embedded default; ``auto`` picks
PostgreSQL on ``127.0.0.1:5432`` (trust auth, as on the CI machine) when it answers.
Each run gets two fresh databases (Prefect's and the control plane's), dropped at the end.
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import create_engine, text

PG_HOST, PG_PORT = "127.0.0.1", 5432
ADMIN_URL = f"postgresql+psycopg2://postgres@{PG_HOST}:{PG_PORT}/postgres"


@dataclass(frozen=True)
class Databases:
    kind: str  # "sqlite" or "postgresql"
    env: dict[str, str]  # variables for the platform's processes (empty: SQLite defaults)


def postgres_answers() -> bool:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=1):
            return True
    except OSError:
        return False


@contextmanager
def databases(choice: str) -> Iterator[Databases]:
    """``sqlite``, ``postgresql`` or ``auto``: the platform's database variables."""
    if choice == "sqlite" or (choice == "auto" and not postgres_answers()):
        yield Databases("sqlite", {})
        return
    stamp = secrets.token_hex(4)
    names = {"prefect": f"idp_prefect_{stamp}", "control_plane": f"idp_cp_{stamp}"}
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    created: list[str] = []
    try:
        with admin.connect() as connection:
            for name in names.values():
                connection.execute(text(f'CREATE DATABASE "{name}"'))
                created.append(name)
        base = f"postgres@{PG_HOST}:{PG_PORT}"
        yield Databases(
            "postgresql",
            {
                "PREFECT_API_DATABASE_CONNECTION_URL": (
                    f"postgresql+asyncpg://{base}/{names['prefect']}"
                ),
                "DATABASE_URL": f"postgresql+psycopg2://{base}/{names['control_plane']}",
            },
        )
    finally:
        with admin.connect() as connection:
            for name in created:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
