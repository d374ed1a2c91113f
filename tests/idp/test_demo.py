"""``make demo`` as a user runs it: it works, again in the same folder, and however it ends
(``--once``, SIGTERM while serving, Ctrl-C in the middle of the workflows) no process it
started is left alive and no port it opened is still listening.

The demo runs as a real subprocess on free ports. A watcher samples its process tree
every 0.2 s (psutil) and, every second, the listening sockets of that tree, so the
check covers everything it started: PostgreSQL, the Prefect server and its
subprocesses, the sandbox, the control plane, the worker and the worker's flow-run
processes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from core.settings import PROJECT_ROOT
from idp.stack import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]


@dataclass
class Watched:
    """Every process seen in the demo's tree and every port they listened on."""

    processes: dict[tuple[int, float], str] = field(default_factory=dict)
    ports: set[int] = field(default_factory=set)

    def names(self) -> str:
        return " | ".join(sorted(set(self.processes.values())))


def _watch(root: psutil.Process, seen: Watched, done: threading.Event) -> None:
    last_ports = 0.0
    while not done.is_set():
        try:
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        for proc in tree:
            try:
                key = (proc.pid, proc.create_time())
                if key not in seen.processes:
                    seen.processes[key] = " ".join(proc.cmdline()[:4])[:120]
            except psutil.Error:
                continue
        if time.monotonic() - last_ports > 1:
            last_ports = time.monotonic()
            pids = {proc.pid for proc in tree}
            for conn in psutil.net_connections(kind="inet"):
                if conn.pid in pids and conn.status == psutil.CONN_LISTEN:
                    seen.ports.add(conn.laddr.port)
        done.wait(0.2)


@dataclass
class DemoRun:
    returncode: int
    output: str
    watched: Watched


def run_demo(
    home: Path,
    *extra: str,
    signal_after: tuple[str, signal.Signals, float] | None = None,
    env: dict[str, str] | None = None,
) -> DemoRun:
    """Run ``idp demo`` to its end; with ``signal_after=(line, sig, seconds)``, send
    ``sig`` that many seconds after ``line`` appears in its output."""
    argv = [
        str(Path(sys.executable).parent / "idp"),
        "demo",
        "--home",
        str(home),
        "--prefect-port",
        str(free_port()),
        "--control-plane-port",
        str(free_port()),
        *extra,
    ]
    demo = subprocess.Popen(
        argv,
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )
    watched, done = Watched(), threading.Event()
    watcher = threading.Thread(target=_watch, args=(psutil.Process(demo.pid), watched, done))
    watcher.start()
    lines: list[str] = []
    try:
        assert demo.stdout is not None
        for line in demo.stdout:
            lines.append(line)
            if signal_after is not None and signal_after[0] in line:
                _, sig, delay = signal_after
                threading.Timer(delay, demo.send_signal, args=(sig,)).start()
                signal_after = None
        returncode = demo.wait(timeout=120)
    finally:
        if demo.poll() is None:
            demo.kill()
        done.set()
        watcher.join()
    return DemoRun(returncode, "".join(lines), watched)


def still_alive(watched: Watched) -> list[str]:
    alive = []
    for (pid, created), name in watched.processes.items():
        try:
            if psutil.Process(pid).create_time() == created:
                alive.append(f"{pid} {name}")
        except psutil.NoSuchProcess:
            continue
    return alive


def still_listening(ports: set[int]) -> list[int]:
    listening = {
        conn.laddr.port
        for conn in psutil.net_connections(kind="inet")
        if conn.status == psutil.CONN_LISTEN
    }
    return sorted(ports & listening)


def assert_nothing_left(run: DemoRun) -> None:
    # The watcher saw the whole platform, down to the flow runs' own processes.
    names = run.watched.names()
    for part in ("postgres", "prefect server", "sandbox", "control-plane", "prefect worker"):
        assert part in names, names
    assert still_alive(run.watched) == []
    # PostgreSQL, Prefect, the control plane and the sandbox's four servers at least.
    assert len(run.watched.ports) >= 7, run.watched.ports
    assert still_listening(run.watched.ports) == []


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield tmp_path_factory.mktemp("demo") / "home"


def test_the_demo_runs_every_workflow_and_leaves_nothing_behind(home: Path) -> None:
    run = run_demo(home, "--once")

    assert run.returncode == 0, run.output
    assert run.output.count("[ok ]") == 3, run.output
    assert "Traceback" not in run.output
    assert "flow-run" in run.watched.names()  # the worker's run processes were watched too
    assert_nothing_left(run)


def test_sigterm_on_the_serving_demo_stops_everything_and_a_second_run_works(
    home: Path,
) -> None:
    # The same folder as the test before: a second demo in the same clone.
    run = run_demo(home, signal_after=("Serving until Ctrl-C", signal.SIGTERM, 0))

    assert run.returncode == 0, run.output
    assert run.output.count("[ok ]") == 3, run.output
    assert "Stopped every process the demo started." in run.output
    assert_nothing_left(run)


def test_ctrl_c_in_the_middle_of_the_workflows_stops_everything(home: Path) -> None:
    # Onboarding done, provisioning requested: its flow-run process is starting or running.
    run = run_demo(
        home, "--once", signal_after=("ApplicationOnboarding: Completed", signal.SIGINT, 2.5)
    )

    assert run.returncode == 130, run.output
    assert "Traceback" not in run.output
    assert "flow-run" in run.watched.names()
    assert_nothing_left(run)


def test_a_platform_that_cannot_start_fails_in_one_line_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    # A misconfigured Prefect setting: every Prefect process refuses to start.
    run = run_demo(tmp_path / "home", "--once", env={"PREFECT_LOGGING_LEVEL": "NOPE"})

    assert run.returncode == 1, run.output
    assert "Traceback" not in run.output
    failure = [line for line in run.output.splitlines() if line.startswith("The demo failed")]
    log = tmp_path / "home" / "logs" / "prefect-server.log"
    assert failure == [f"The demo failed: prefect-server exited early (exit 1). See {log}"]
    assert "PREFECT_LOGGING_LEVEL" in log.read_text() or "NOPE" in log.read_text()
    assert still_alive(run.watched) == []
    assert still_listening(run.watched.ports) == []
