"""Start and stop the whole local platform as real processes on loopback.

The demo, the end-to-end tests and the benchmarks all need the same thing: ``prefect
server`` (SQLite under a private ``PREFECT_HOME``), the sandbox, the control plane and a
process worker on ``idp-pool``, with the block documents saved and the deployments
registered. ``Stack`` does that in order, remembers every process it started, and stops
exactly those (process groups, by PID) however the caller exits.
"""

from __future__ import annotations

import contextlib
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
from typing import IO

import httpx

from core.settings import PROJECT_ROOT
from core.workflows import WORK_POOL

BIN = Path(sys.executable).parent
EXECUTION_WORKERS_BLOCK = "idp-execution-workers/default"


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


@dataclass
class StackConfig:
    home: Path  # PREFECT_HOME, data dir and logs live under it
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
    pass


class Stack:
    """The platform's processes. Use as a context manager; ``stop()`` is idempotent."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.processes: list[Process] = []
        self.sandbox_env: dict[str, str] = {}
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
                "PREFECT_WORKER_QUERY_SECONDS": str(self.config.worker_poll_seconds),
                # Heartbeats let the recovery automations (deployments/recovery.py) find runs
                # whose process died with its host.
                "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30",
                "IDP_DATA_DIR": str(self.config.home / "data"),
                "IDP_PROJECT_DIR": str(PROJECT_ROOT),
                "CONTROL_PLANE_URL": self.control_plane_url,
                "PYTHONUNBUFFERED": "1",
                # The pool's engine command (`idp flow-run`, prefect.yaml) is found on PATH,
                # as in an activated virtualenv.
                "PATH": os.pathsep.join([str(BIN), env.get("PATH", os.defpath)]),
            }
        )
        env.update(self.sandbox_env)
        if self.config.execution_workers_port is not None:
            env.update(
                {
                    "EXECUTION_WORKERS_URL": self.execution_workers_url,
                    "IDP_GIT_BLOCK": EXECUTION_WORKERS_BLOCK,
                    "IDP_SECRET_BACKEND_BLOCK": EXECUTION_WORKERS_BLOCK,
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
        (self.logs / f"{name}.log").write_text(done.stdout + done.stderr)
        if done.returncode != 0:
            raise StackError(f"{name} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def stop(self) -> None:
        """Stop every process this stack started, newest first, by process group.

        A worker runs each flow run in a session of its own, so the group signal does not
        reach a run still in flight: whatever descended from our processes and outlives
        them is killed too.
        """
        while self.processes:
            proc = self.processes.pop()
            children = {pid: _started_at(pid) for pid in descendants(proc.popen.pid)}
            _terminate(proc.popen)
            for pid, started in children.items():
                if started is not None and _started_at(pid) == started:  # not a reused PID
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGKILL)

    def process(self, name: str) -> Process:
        """The newest process started under ``name``."""
        return next(p for p in reversed(self.processes) if p.name == name)

    # ---- helpers ---------------------------------------------------------------------
    def _spawn(self, name: str, argv: list[str], *, capture: bool = False) -> Process:
        log = self.logs / f"{name}.log"
        out: IO[bytes] | int
        out = subprocess.PIPE if capture else log.open("ab")
        popen = subprocess.Popen(  # noqa: S603 - our own executables
            argv,
            cwd=PROJECT_ROOT,
            env=self.env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        process = Process(name, popen, log)
        self.processes.append(process)
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
        raise StackError(f"sandbox did not become ready:\n{process.tail()}")

    @staticmethod
    def _wait_http(url: str, process: Process, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.popen.poll() is not None:
                raise StackError(f"{process.name} exited early:\n{process.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            time.sleep(0.25)
        raise StackError(f"{process.name} not ready after {timeout:.0f} s:\n{process.tail()}")


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
