"""Shared fixtures: a clean environment per test, a private PREFECT_HOME per run, and
the sandbox servers over real HTTP on loopback."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Every test run gets its own PREFECT_HOME before prefect is imported anywhere, so runs
# never share a database, results or settings (and never phone home).
_RUN_HOME = Path(tempfile.mkdtemp(prefix="idp-test-prefect-"))
os.environ["PREFECT_HOME"] = str(_RUN_HOME)
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ["PREFECT_RESULTS_PERSIST_BY_DEFAULT"] = "true"

# The variables the platform reads; a test that needs one sets it with monkeypatch.
_PLATFORM_VARS = (
    "GITHUB_TOKEN",
    "GITHUB_API_URL",
    "GITHUB_ORG",
    "HARBOR_URL",
    "HARBOR_ROBOT_USERNAME",
    "HARBOR_ROBOT_PASSWORD",
    "HARBOR_PROJECT",
    "APPENV_SECRETS_ENDPOINT",
    "APPENV_SECRET_BINDINGS_ENDPOINT",
    "APPENV_GITOPS_VERIFY_ENDPOINT",
    "SECRET_BINDINGS_UPDATE_ENDPOINT",
    "INTERNAL_AUTH_TOKEN",
    "DATABASE_URL",
    "VAULT_ADDR",
    "VAULT_TOKEN",
    "CONTROL_PLANE_URL",
    "EXECUTION_WORKERS_URL",
    "IDP_DATA_DIR",
    # Tracing exporters (core/telemetry.py): a developer's collector must not get test spans.
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "IDP_TRACES_FILE",
    "IDP_TRACES_CONSOLE",
)
for _name in _PLATFORM_VARS:
    os.environ.pop(_name, None)


@pytest.fixture(autouse=True)
def _clean_environ() -> Iterator[None]:
    """Each test starts without platform variables and cannot leak changes to the next."""
    from core.settings import reset_settings

    for name in _PLATFORM_VARS:
        os.environ.pop(name, None)
    before = dict(os.environ)
    reset_settings()
    yield
    for name in set(os.environ) - set(before) - {"PYTEST_CURRENT_TEST"}:
        del os.environ[name]
    for name, value in before.items():
        if os.environ.get(name) != value and name != "PYTEST_CURRENT_TEST":
            os.environ[name] = value
    reset_settings()


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """A real Prefect API (SQLite, subprocess) for the whole session; opt in by name."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with (
        prefect_test_harness(server_startup_timeout=120),
        temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        yield


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A skipped test is a failure: on this machine kind every tool the suite needs is
    installed by `make test` (tests/system-tools.sh) or comes from the package index, so a
    skip would only hide a missing one. ``IDP_ALLOW_SKIPS=1`` lifts it for a developer's
    partial run."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped and exitstatus == 0 and os.environ.get("IDP_ALLOW_SKIPS") != "1":
        names = ", ".join(sorted({report.nodeid for report in skipped})[:10])
        if reporter is not None:
            reporter.ensure_newline()
            reporter.write_sep("!", f"{len(skipped)} skipped, which fails the run: {names}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
