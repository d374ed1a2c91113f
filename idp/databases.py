"""Which databases a local platform (``idp.stack``) runs on, for the demo, benchmarks and
end-to-end tests.

- ``embedded-postgres`` (the embedded default): a PostgreSQL server the stack starts and
  stops itself (``idp/postgres.py``);
- ``postgresql``: the machine's PostgreSQL on 127.0.0.1:5432 (trust auth, as on the CI
  machine), with two fresh databases (Prefect's and the control plane's) dropped at the end;
- ``sqlite``: SQLite files under the stack's home, Prefect's own default. It locks under
  this platform's load (docs/embedded-default.md): for comparisons only;
- ``auto``: ``postgresql`` when a server answers on 127.0.0.1:5432, else ``embedded-postgres``.
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import create_engine, text

from idp.stack import Database

PG_HOST, PG_PORT = "127.0.0.1", 5432
ADMIN_URL = f"postgresql+psycopg2://postgres@{PG_HOST}:{PG_PORT}/postgres"
CHOICES = ("embedded-postgres", "postgresql", "sqlite", "auto")


@dataclass(frozen=True)
class Databases:
    kind: str  # "embedded-postgres", "postgresql" or "sqlite"
    stack_database: Database  # what StackConfig.database says
    env: dict[str, str] = field(default_factory=dict)  # variables for the platform's processes


def postgres_answers() -> bool:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=1):
            return True
    except OSError:
        return False


@contextmanager
def databases(choice: str) -> Iterator[Databases]:
    """The platform's databases for ``choice`` (one of ``CHOICES``)."""
    if choice == "auto":
        choice = "postgresql" if postgres_answers() else "embedded-postgres"
    if choice in ("sqlite", "embedded-postgres"):
        yield Databases(choice, choice)  # type: ignore[arg-type]
        return
    if choice != "postgresql":
        raise ValueError(f"unknown database choice {choice!r}; one of {CHOICES}")
    with fresh_postgres_databases("prefect", "cp") as urls:
        yield Databases(
            "postgresql",
            "external",
            {
                "PREFECT_API_DATABASE_CONNECTION_URL": urls["prefect"].replace(
                    "+psycopg2", "+asyncpg"
                ),
                "DATABASE_URL": urls["cp"],
            },
        )


@contextmanager
def fresh_postgres_databases(
    *purposes: str, host: str = PG_HOST, port: int = PG_PORT
) -> Iterator[dict[str, str]]:
    """A new database per purpose on the server at ``host:port`` (psycopg2 URLs by
    purpose), dropped, with any connection left, at the end."""
    stamp = secrets.token_hex(4)
    names = {purpose: f"idp_{purpose}_{stamp}" for purpose in purposes}
    admin = create_engine(
        f"postgresql+psycopg2://postgres@{host}:{port}/postgres", isolation_level="AUTOCOMMIT"
    )
    created: list[str] = []
    try:
        with admin.connect() as connection:
            for name in names.values():
                connection.execute(text(f'CREATE DATABASE "{name}"'))
                created.append(name)
        yield {
            purpose: f"postgresql+psycopg2://postgres@{host}:{port}/{name}"
            for purpose, name in names.items()
        }
    finally:
        with admin.connect() as connection:
            for name in created:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
