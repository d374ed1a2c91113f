"""Start and stop the whole local platform as real processes on loopback.

The demo, the end-to-end tests and the benchmarks all need the same thing: a database
(by default a PostgreSQL of the stack's own, ``idp/postgres.py``), ``prefect server``
(under a private ``PREFECT_HOME``), the sandbox, the control plane and a process worker
on ``idp-pool``, with the block documents saved and the deployments registered. ``Stack``
does that in order, remembers every process it started, and stops exactly those (process
groups, by PID) however the caller exits.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import httpx

from blocks.platform.workflows import WORK_POOL
from core.settings import PROJECT_ROOT
from idp.postgres import EmbeddedPostgres

BIN = Path(sys.executable).parent
EXECUTION_WORKERS_BLOCK = "idp-execution-workers/default"
RESULT_STORAGE_BLOCK = "local-file-system/idp-results"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


# Where Prefect and the control plane keep their state:
# - "embedded-postgres": a PostgreSQL server the stack starts and stops (the default);
# - "sqlite": SQLite files under the home (Prefect's own default; locks under load);
# - "external": whatever ``extra_env`` points them at (PREFECT_API_DATABASE_CONNECTION_URL,
#   DATABASE_URL), e.g. a PostgreSQL server of the machine.
Database = Literal["embedded-postgres", "sqlite", "external"]
# The embedded server's databases, one per owner.
PREFECT_DATABASE = "prefect"
CONTROL_PLANE_DATABASE = "control_plane"


@dataclass
class StackConfig:
    home: Path  # PREFECT_HOME, data dir and logs live under it
    database: Database = "embedded-postgres"
    prefect_port: int = 4200
    control_plane_port: int = 8080
    worker_limit: int = 8
    worker_poll_seconds: float = 1.0
    sandbox_latency_ms: float = 0
    extra_env: dict[str, str] = field(default_factory=dict)
    # Route the workflows' git and secret side effects through execution-workers on this
    # port (the seeds' architecture) instead of calling the providers from the flow run.
    execution_workers_port: int | None = None


class StackError(RuntimeError):
    """A part of the platform failed: ``summary`` says which in one line, ``log`` is the
    file that explains it; ``str()`` adds the log's last lines (for test reports)."""

    def __init__(self, summary: str, *, log: Path | None = None, tail: str = "") -> None:
        super().__init__(f"{summary}\n{tail}" if tail else summary)
        self.summary = summary
        self.log = log


# Every process a stack starts is listed here (under its home) while it runs, so a stack
# whose owner was killed without a chance to stop it is cleaned up by the next one.
PROCESS_REGISTRY = "processes.json"


class Stack:
    """The platform's processes. Use as a context manager; ``stop()`` is idempotent."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.processes: list[Process] = []
        self.sandbox_env: dict[str, str] = {}
        self.database_env: dict[str, str] = {}
        self.postgres: EmbeddedPostgres | None = None
        self.logs = config.home / "logs"

    # ---- addresses -------------------------------------------------------------------
    @property
    def prefect_api_url(self) -> str:
        return f"http://127.0.0.1:{self.config.prefect_port}/api"

    @property
    def prefect_ui_url(self) -> str:
        return f"http://127.0.0.1:{self.config.prefect_port}"

    @property
    def control_plane_url(self) -> str:
        return f"http://127.0.0.1:{self.config.control_plane_port}"

    def env(self) -> dict[str, str]:
        """The environment every platform process runs with."""
        env = dict(os.environ)
        env.update(
            {
                "PREFECT_HOME": str(self.config.home / "prefect"),
                "PREFECT_API_URL": self.prefect_api_url,
                "PREFECT_UI_URL": self.prefect_ui_url,
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true",
                # A result storage block (created by `idp bootstrap`): Prefect then skips a
                # server read per run and a path resolution per task result.
                "PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK": RESULT_STORAGE_BLOCK,
                "PREFECT_WORKER_QUERY_SECONDS": str(self.config.worker_poll_seconds),
                # Heartbeats let the recovery automations (deployments/recovery.py) find runs
                # whose process died with its host.
                "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30",
                "IDP_DATA_DIR": str(self.config.home / "data"),
                "IDP_PROJECT_DIR": str(PROJECT_ROOT),
                "CONTROL_PLANE_URL": self.control_plane_url,
                "PYTHONUNBUFFERED": "1",
                # The worker runs a cancelled run's on_cancellation hook itself, outside any
                # flow run; its undo steps' task logs stay in the worker log, not the API.
                "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
                # The pool's engine command (`idp flow-run`, prefect.yaml) is found on PATH,
                # as in an activated virtualenv.
                "PATH": os.pathsep.join([str(BIN), env.get("PATH", os.defpath)]),
            }
        )
        env.update(self.database_env)
        env.update(self.sandbox_env)
        if self.config.execution_workers_port is not None:
            env.update(
                {
                    "EXECUTION_WORKERS_URL": self.execution_workers_url,
                    "IDP_GIT_BLOCK": EXECUTION_WORKERS_BLOCK,
                    "IDP_SECRET_BACKEND_BLOCK": EXECUTION_WORKERS_BLOCK,
                    "IDP_SECRET_BINDINGS_BLOCK": EXECUTION_WORKERS_BLOCK,
                    "IDP_GITOPS_BLOCK": EXECUTION_WORKERS_BLOCK,
                }
            )
        env.update(self.config.extra_env)
        return env

    @property
    def execution_workers_url(self) -> str:
        return f"http://127.0.0.1:{self.config.execution_workers_port}"

    # ---- lifecycle -------------------------------------------------------------------
    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        (self.config.home / "data").mkdir(parents=True, exist_ok=True)
        if self.config.database == "embedded-postgres":
            self.start_postgres()
        server = self._spawn(
            "prefect-server",
            [
                str(BIN / "prefect"),
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.config.prefect_port),
            ],
        )
        sandbox = self._spawn(
            "sandbox",
            [str(BIN / "idp"), "sandbox", "--latency-ms", str(self.config.sandbox_latency_ms)],
            capture=True,
        )
        self.sandbox_env = self._read_sandbox_env(sandbox)
        self._wait_http(f"{self.prefect_api_url}/health", server, timeout=120)
        self._spawn(
            "control-plane",
            [str(BIN / "idp"), "control-plane", "--port", str(self.config.control_plane_port)],
        )
        self._wait_http(f"{self.control_plane_url}/ready", self.processes[-1], timeout=60)
        if self.config.execution_workers_port is not None:
            port = str(self.config.execution_workers_port)
            self._spawn(
                "execution-workers", [str(BIN / "idp"), "execution-workers", "--port", port]
            )
            self._wait_http(f"{self.execution_workers_url}/ready", self.processes[-1], timeout=60)
        self.run([str(BIN / "idp"), "bootstrap"], "bootstrap")
        self.deploy()
        self.start_worker()

    def start_postgres(self) -> None:
        """The stack's own PostgreSQL, with a database for Prefect and one for the control
        plane; it is the first process started, so the last one stopped."""
        postgres = EmbeddedPostgres(
            data_dir=self.config.home / "postgres",
            port=free_port(),
            log=self.logs / "postgres.log",
        )
        self.postgres = postgres
        postgres.initialize()
        process = self._spawn("postgres", postgres.argv(), **postgres.spawn_options())
        postgres.wait_ready(process.popen)
        for name in (PREFECT_DATABASE, CONTROL_PLANE_DATABASE):
            postgres.create_database(name)
        self.database_env = {
            "PREFECT_API_DATABASE_CONNECTION_URL": postgres.url(PREFECT_DATABASE, "asyncpg"),
            "DATABASE_URL": postgres.url(CONTROL_PLANE_DATABASE),
        }

    def start_worker(self) -> Process:
        """Start a process worker on the pool; also how a test replaces a worker it killed."""
        return self._spawn(
            "worker",
            [
                str(BIN / "prefect"),
                "worker",
                "start",
                "--pool",
                WORK_POOL,
                "--limit",
                str(self.config.worker_limit),
            ],
        )

    def deploy(self) -> None:
        """Create the work pool (idempotent) and register every deployment of prefect.yaml."""
        self.run(
            [
                str(BIN / "prefect"),
                "work-pool",
                "create",
                WORK_POOL,
                "--type",
                "process",
                "--overwrite",
            ],
            "work-pool",
        )
        self.run([str(BIN / "prefect"), "--no-prompt", "deploy", "--all"], "deploy")

    def run(self, argv: list[str], name: str, timeout: float = 300) -> str:
        """Run a one-shot command in the stack's environment; raise with its output on failure."""
        done = subprocess.run(  # noqa: S603 - our own executables
            argv,
            cwd=PROJECT_ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        log = self.logs / f"{name}.log"
        log.write_text(done.stdout + done.stderr)
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
            raise StackError(f"{name} failed (exit {done.returncode})", log=log, tail=tail)
        return done.stdout

    def stop(self) -> None:
        """Stop every process this stack started, newest first, by process group.

        A worker runs each flow run in a session of its own, so the group signal does not
        reach a run still in flight: whatever descended from our processes and outlives
        them is killed too. A second Ctrl-C or a SIGTERM meanwhile waits until everything
        is stopped.
        """
        with _signals_deferred():
            while self.processes:
                proc = self.processes.pop()
                stop_process_tree(proc.popen)
            if _SUBREAPER:  # orphans of our processes were handed to us: none may stay
                _kill_if_same({pid: _started_at(pid) for pid in descendants(os.getpid())})
                _reap_zombies()
            if self.postgres is not None:
                self.postgres.cleanup()
            self.registry.unlink(missing_ok=True)

    @property
    def registry(self) -> Path:
        return self.config.home / PROCESS_REGISTRY

    def _register(self) -> None:
        entries = [
            {"name": p.name, "pid": p.popen.pid, "started": _started_at(p.popen.pid)}
            for p in self.processes
        ]
        self.registry.write_text(json.dumps(entries))

    def process(self, name: str) -> Process:
        """The newest process started under ``name``."""
        return next(p for p in reversed(self.processes) if p.name == name)

    # ---- helpers ---------------------------------------------------------------------
    def _spawn(
        self, name: str, argv: list[str], *, capture: bool = False, **options: Any
    ) -> Process:
        log = self.logs / f"{name}.log"
        with contextlib.ExitStack() as files:
            out: IO[bytes] | int = subprocess.PIPE
            if not capture:  # the child keeps its own copy of the log's descriptor
                out = files.enter_context(log.open("ab"))
            popen = subprocess.Popen(  # noqa: S603 - our own executables
                argv,
                cwd=PROJECT_ROOT,
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **options,
            )
        process = Process(name, popen, log)
        self.processes.append(process)
        self._register()
        return process

    def _read_sandbox_env(self, process: Process) -> dict[str, str]:
        env: dict[str, str] = {}
        assert process.popen.stdout is not None
        deadline = time.monotonic() + 60
        stdout = process.popen.stdout
        with process.log.open("ab") as log:
            for raw in stdout:
                log.write(raw)
                line = raw.decode().strip()
                if line == "READY":
                    # Keep draining into the log so a chatty sandbox never blocks on a full pipe.
                    threading.Thread(target=_drain, args=(stdout, process.log), daemon=True).start()
                    return env
                if "=" in line:
                    name, value = line.split("=", 1)
                    env[name] = value
                if time.monotonic() > deadline:
                    break
        raise StackError("the sandbox did not become ready", log=process.log, tail=process.tail())

    @staticmethod
    def _wait_http(url: str, process: Process, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.popen.poll() is not None:
                raise StackError(
                    f"{process.name} exited early (exit {process.popen.returncode})",
                    log=process.log,
                    tail=process.tail(),
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            time.sleep(0.25)
        raise StackError(
            f"{process.name} did not answer {url} within {timeout:.0f} s",
            log=process.log,
            tail=process.tail(),
        )


def _stat(pid: int | str) -> list[str] | None:
    """Fields of ``/proc/<pid>/stat`` from the state on (the command name, which may hold
    spaces and parentheses, is cut off); None when the process is gone or not on Linux."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _started_at(pid: int) -> str | None:
    fields = _stat(pid)
    return fields[19] if fields else None  # field 22, start time in clock ticks


def descendants(pid: int) -> list[int]:
    """PIDs of every live descendant of ``pid``, children first (Linux ``/proc``; elsewhere
    an empty list)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*/stat"):
        fields = _stat(entry.parent.name)
        if fields:
            parents.setdefault(int(fields[1]), []).append(int(entry.parent.name))
    found: list[int] = []
    queue = list(parents.get(pid, []))
    while queue:
        child = queue.pop(0)
        found.append(child)
        queue += parents.get(child, [])
    return found


_SUBREAPER = False
PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux), so a flow-run
    process whose worker died is still ours to stop. For a program that owns every child
    it has (the demo), not for a test runner."""
    global _SUBREAPER
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        _SUBREAPER = libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        _SUBREAPER = False
    return _SUBREAPER


def _reap_zombies() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] != 0:
            pass


def stop_process_tree(popen: subprocess.Popen[bytes]) -> None:
    """Stop ``popen``'s process group, then kill whatever descended from it and is left."""
    children = {pid: _started_at(pid) for pid in descendants(popen.pid)}
    _terminate(popen)
    _kill_if_same(children)


def _kill_if_same(processes: dict[int, str | None]) -> None:
    """SIGKILL each pid still running the process it ran when listed (not a reused pid)."""
    for pid, started in processes.items():
        if started is not None and _started_at(pid) == started:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def reap_leftovers(home: Path) -> list[str]:
    """Kill what a previous stack under ``home`` started and never stopped (its owner was
    killed with SIGKILL, or the machine's session ended); names of what was found."""
    registry = home / PROCESS_REGISTRY
    try:
        entries = json.loads(registry.read_text())
    except (OSError, ValueError):
        return []
    found: list[str] = []
    for entry in entries:
        pid, started = int(entry["pid"]), entry.get("started")
        if started is None or _started_at(pid) != started:
            continue
        found.append(str(entry["name"]))
        tree = {child: _started_at(child) for child in descendants(pid)}
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        _kill_if_same({pid: started, **tree})
    registry.unlink(missing_ok=True)
    return found


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block is done (main thread only), then act on
    the first one that came, as an interrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda signum, _frame: received.append(signum))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received:
        raise KeyboardInterrupt


def _drain(stream: IO[bytes], log: Path) -> None:
    with contextlib.suppress(ValueError, OSError), log.open("ab") as out:
        for raw in stream:
            out.write(raw)
            out.flush()


def _terminate(popen: subprocess.Popen[bytes], grace: float = 10) -> None:
    """SIGINT, then SIGTERM, then SIGKILL to the process group (a prefect worker needs two
    SIGINTs to stop, see research/prefect.md §12)."""
    if popen.poll() is not None:
        return
    for sig in (signal.SIGINT, signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(popen.pid, sig)
        try:
            popen.wait(timeout=grace / 3)
            break
        except subprocess.TimeoutExpired:
            continue
    if popen.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(popen.pid, signal.SIGKILL)
        popen.wait(timeout=5)
    if popen.stdout is not None:
        popen.stdout.close()


@contextlib.contextmanager
def running_stack(config: StackConfig) -> Iterator[Stack]:
    with Stack(config) as stack:
        yield stack
