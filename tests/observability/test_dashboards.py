"""The Grafana dashboards answer the seed's questions, and every panel shows data.

Static checks read the JSON: the two dashboards exist under their seed titles, query
only the seeds' metrics, and each answers how often each workflow runs, its p95 latency,
its success/failure rate, its retries and the downstream errors. The live check starts a
real Prometheus scraping control-plane-api and execution-workers every second, runs two
short rounds of workflows (a retried run, a failed run, a run routed through
execution-workers whose provider fails once), and asks Prometheus every panel's query:
each must parse and return at least one finite value.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect.states import State

from blocks.platform.domain import WORKFLOW_APPENV_PROVISIONING, appenv_repository_name
from core.settings import PROJECT_ROOT, reset_settings
from sandbox.run import DEFAULT_GITHUB_ORG
from tests.flows.platform.conftest import ROUTED_ROLES
from tests.flows.platform.support import run
from tests.observability.conftest import Platform
from tests.observability.prometheus import Prometheus, numbers, prometheus_binary
from tests.observability.workflows import Scrape, aprovision, provision

DASHBOARDS = {
    "IDP Observability": PROJECT_ROOT / "docs/dashboards/idp-observability.json",
    "IDP Workflows Detail": PROJECT_ROOT / "docs/dashboards/idp-workflows-detail.json",
}
SEED_METRICS = {
    "workflow_run_duration_seconds_bucket",
    "workflow_run_duration_seconds_count",
    "workflow_run_duration_seconds_sum",
    "workflow_retries_total",
    "domain_events_total",
    "http_requests_total",
    "downstream_errors_total",
}
# The seed's questions and what a query answering each must contain.
QUESTIONS = {
    "how often each workflow runs": r"(rate|increase)\(workflow_run_duration_seconds_count",
    "p95 latency": r"histogram_quantile\(0\.95, .*workflow_run_duration_seconds_bucket",
    "success/failure rate": r'workflow_run_duration_seconds_count\{[^}]*result="(success|failure)"',
    "retries": r"workflow_retries_total",
    "downstream errors": r"downstream_errors_total",
}
# Grafana's variables as Prometheus needs them: all workflows, windows over the test.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__range": "10m", "$workflow": ".*"}
METRIC = re.compile(r"\b([a-z_:][a-z0-9_:]*)\s*(?=[{\[])")


def load(title: str) -> dict[str, Any]:
    return dict(json.loads(Path(DASHBOARDS[title]).read_text()))


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def queries() -> list[tuple[str, str, str]]:
    """(dashboard, panel title, PromQL with Grafana's variables filled in)."""
    found = []
    for title in DASHBOARDS:
        for panel in panels(load(title)):
            for target in panel["targets"]:
                expr = target["expr"]
                for variable, value in GRAFANA_VARIABLES.items():
                    expr = expr.replace(variable, value)
                found.append((title, panel["title"], expr))
    return found


@pytest.mark.parametrize("title", sorted(DASHBOARDS))
def test_the_dashboard_answers_the_seed_questions(title: str) -> None:
    dashboard = load(title)
    assert dashboard["title"] == title
    assert dashboard["uid"] == Path(DASHBOARDS[title]).stem
    found = list(panels(dashboard))
    assert len({p["id"] for p in found}) == len(found)
    exprs = []
    for panel in found:
        assert panel["description"] and panel["targets"], panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        exprs += [t["expr"] for t in panel["targets"]]
    used = {m for expr in exprs for m in METRIC.findall(expr)}
    assert used <= SEED_METRICS
    unanswered = [
        q for q, pattern in QUESTIONS.items() if not any(re.search(pattern, e) for e in exprs)
    ]
    assert unanswered == []


def test_the_dashboards_use_every_seed_metric() -> None:
    used = {m for _, _, expr in queries() for m in METRIC.findall(expr)}
    assert used == SEED_METRICS


@pytest.fixture(scope="module")
def prometheus(
    obs_control_plane: Any, obs_workers: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Prometheus]:
    binary = prometheus_binary()
    # `make test` installs it (tests/system-tools.sh); a missing Prometheus is a failure.
    assert binary is not None, "prometheus is missing: run tests/system-tools.sh"
    server = Prometheus(
        binary,
        tmp_path_factory.mktemp("prometheus"),
        {"control-plane-api": obs_control_plane.url, "execution-workers": obs_workers},
    ).start()
    yield server
    server.stop()


def one_round(platform: Platform, routed_block: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A retried run and a failed run at once, then a run routed through execution-workers
    whose first GitHub call fails (a downstream error): every series the panels read."""
    domain, github = platform.domain, platform.sandbox.github.server
    retried, failing = domain.environment(secrets=()), domain.environment(secrets=())
    protection = r"/repos/{}/{}/branches/.*/protection"
    github.faults.add(
        method="PUT",
        path=protection.format(DEFAULT_GITHUB_ORG, appenv_repository_name(retried)),
        statuses=[503, 200],
    )
    github.faults.add(
        path=protection.format(DEFAULT_GITHUB_ORG, appenv_repository_name(failing)),
        statuses=[403],
    )

    async def at_once() -> list[State[Any]]:
        return list(await asyncio.gather(aprovision(retried), aprovision(failing)))

    assert [s.type.value for s in run(at_once())] == ["COMPLETED", "FAILED"]
    routed = domain.environment(secrets=("db-password",))
    github.faults.add(method="POST", path=rf"/orgs/{DEFAULT_GITHUB_ORG}/repos$", statuses=[503])
    with monkeypatch.context() as patch:
        for variable in ROUTED_ROLES:
            patch.setenv(variable, routed_block)
        reset_settings()
        assert provision(routed).is_completed()
    reset_settings()


def wait_until_scraped(prometheus: Prometheus, platform: Platform, workers: str) -> None:
    """Prometheus holds what the services expose now (so the next round is an increase)."""
    want = {
        "sum(workflow_run_duration_seconds_count)": Scrape(platform.control_plane.url).value(
            "workflow_run_duration_seconds_count"
        ),
        "sum(downstream_errors_total)": Scrape(workers).value("downstream_errors_total"),
    }
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if all(numbers(prometheus.query(expr)) == [value] for expr, value in want.items()):
            return
        time.sleep(0.5)
    raise AssertionError(f"prometheus never scraped {want}")


def test_every_panel_shows_data_from_a_real_prometheus(
    prometheus: Prometheus,
    platform: Platform,
    obs_workers: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert prometheus.wait_for_targets() == {"control-plane-api": True, "execution-workers": True}
    routed_block = f"idp-execution-workers/{platform.blocks['IDP_GIT_BLOCK'].split('/')[1]}"
    # Round one creates every series; round two makes them move (rates need an increase).
    for _ in range(2):
        one_round(platform, routed_block, monkeypatch)
        wait_until_scraped(prometheus, platform, obs_workers)

    assert WORKFLOW_APPENV_PROVISIONING in prometheus.label_values("workflow")
    empty: list[str] = []
    deadline = time.monotonic() + 20
    while True:
        empty = [
            f"{dashboard} / {panel}: {expr}"
            for dashboard, panel, expr in queries()
            if not numbers(prometheus.query(expr))
        ]
        if not empty or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert empty == []
