"""The seeds' metrics, moved by real workflow runs and read from ``/metrics``.

Names and labels are the contract (seeds 000-002): dashboards and alerts query them.
Each test runs workflows against the sandbox and reads the services' ``/metrics`` before
and after, as Prometheus would scrape them.
"""

from __future__ import annotations

import pytest

from blocks.platform.domain import (
    WORKFLOW_APPENV_PROVISIONING,
    WORKFLOW_APPLICATION_ONBOARDING,
    WORKFLOW_SECRET_ROTATION,
    appenv_repository_name,
)
from sandbox.run import DEFAULT_GITHUB_ORG
from tests.flows.platform.support import flow_run_id
from tests.observability.conftest import Platform
from tests.observability.workflows import Scrape, onboard, provision, rotate

CP = "control-plane-api"
WORKERS = "execution-workers"
# Seeds 000-002: every sample of these metrics carries exactly these labels.
SEED_LABELS = {
    "workflow_run_duration_seconds_bucket": {"workflow", "result", "le"},
    "workflow_run_duration_seconds_count": {"workflow", "result"},
    "workflow_run_duration_seconds_sum": {"workflow", "result"},
    "workflow_retries_total": {"workflow"},
    "domain_events_total": {"event", "result"},
    "http_requests_total": {"service", "route", "method", "status"},
    "downstream_errors_total": {"target", "code", "status"},
}


def assert_seed_labels(scrape: Scrape) -> None:
    for name, labels in SEED_LABELS.items():
        assert scrape.label_names(name) <= {frozenset(labels)}, name


def test_a_provisioning_run_moves_duration_retries_events_and_requests(
    platform: Platform,
) -> None:
    env_id = platform.domain.environment(secrets=("db-password",))
    repository = appenv_repository_name(env_id)
    platform.sandbox.github.server.faults.add(
        method="PUT",
        path=rf"/repos/{DEFAULT_GITHUB_ORG}/{repository}/branches/.*/protection",
        statuses=[503, 200],
    )
    url = platform.control_plane.url
    before = Scrape(url)

    state = provision(env_id)

    assert state.is_completed(), state.message
    after = Scrape(url)
    assert_seed_labels(after)
    run = {"workflow": WORKFLOW_APPENV_PROVISIONING, "result": "success"}
    for sample in ("workflow_run_duration_seconds_count", "workflow_run_duration_seconds_bucket"):
        labels = {**run, "le": "+Inf"} if sample.endswith("bucket") else run
        assert after.value(sample, **labels) == before.value(sample, **labels) + 1, sample
    reported = platform.control_plane.reported_run(flow_run_id(state))
    assert reported is not None
    assert after.value("workflow_run_duration_seconds_sum", **run) == pytest.approx(
        before.value("workflow_run_duration_seconds_sum", **run) + reported["duration_seconds"]
    )
    workflow = {"workflow": WORKFLOW_APPENV_PROVISIONING}
    assert after.value("workflow_retries_total", **workflow) == (
        before.value("workflow_retries_total", **workflow) + 1
    )
    completed = {"event": "workflow_appenv_provisioning_completed", "result": "success"}
    assert after.value("domain_events_total", **completed) == (
        before.value("domain_events_total", **completed) + 1
    )
    reports = {
        "service": CP,
        "route": "/internal/v1/workflow-runs",
        "method": "POST",
        "status": "201",
    }
    assert after.value("http_requests_total", **reports) == (
        before.value("http_requests_total", **reports) + 1
    )


def test_a_failed_run_is_counted_as_a_failure_with_its_failed_event(platform: Platform) -> None:
    env_id = platform.domain.environment(secrets=("db-password",))
    platform.sandbox.github.server.faults.add(path=r"/branches/.*/protection", statuses=[403])
    url = platform.control_plane.url
    before = Scrape(url)

    state = provision(env_id)

    assert state.is_failed()
    after = Scrape(url)
    failure = {"workflow": WORKFLOW_APPENV_PROVISIONING, "result": "failure"}
    assert after.value("workflow_run_duration_seconds_count", **failure) == (
        before.value("workflow_run_duration_seconds_count", **failure) + 1
    )
    failed = {"event": "workflow_appenv_provisioning_failed", "result": "error"}
    assert after.value("domain_events_total", **failed) == (
        before.value("domain_events_total", **failed) + 1
    )


def test_every_seed_workflow_reports_the_same_metrics(platform: Platform) -> None:
    domain = platform.domain
    app_id = domain.application()
    env_id = domain.environment(secrets=())
    secret_id, _ = domain.secret(environments=(env_id,))
    url = platform.control_plane.url
    before = Scrape(url)

    states = [onboard(app_id), rotate(secret_id)]

    assert [s.type.value for s in states] == ["COMPLETED", "COMPLETED"]
    after = Scrape(url)
    assert_seed_labels(after)
    for workflow in (WORKFLOW_APPLICATION_ONBOARDING, WORKFLOW_SECRET_ROTATION):
        run = {"workflow": workflow, "result": "success"}
        assert after.value("workflow_run_duration_seconds_count", **run) == (
            before.value("workflow_run_duration_seconds_count", **run) + 1
        ), workflow
        # Reported even when zero, so a dashboard lists every workflow that ran.
        assert any(
            name == "workflow_retries_total" and labels == {"workflow": workflow}
            for name, labels, _ in after.samples
        ), workflow
    for event in (
        "workflow_application_onboarding_completed",
        "secret_rotation_started",
        "workflow_secret_rotation_completed",
    ):
        labels = {"event": event, "result": "success"}
        assert after.value("domain_events_total", **labels) == (
            before.value("domain_events_total", **labels) + 1
        ), event


def test_downstream_errors_are_counted_by_target_code_and_status(
    platform: Platform, routed: str
) -> None:
    env_id = platform.domain.environment(secrets=("db-password",))
    platform.sandbox.github.server.faults.add(
        method="POST", path=rf"/orgs/{DEFAULT_GITHUB_ORG}/repos$", statuses=[503, 201]
    )
    before = Scrape(routed)

    state = provision(env_id)

    assert state.is_completed(), state.message
    after = Scrape(routed)
    assert_seed_labels(after)
    error = {"target": "github", "code": "upstream_unavailable", "status": "503"}
    assert after.value("downstream_errors_total", **error) == (
        before.value("downstream_errors_total", **error) + 1
    )
    answered = {"service": WORKERS, "route": "/github/repos", "method": "POST"}
    assert after.value("http_requests_total", **answered, status="503") == (
        before.value("http_requests_total", **answered, status="503") + 1
    )
    assert after.value("http_requests_total", **answered, status="200") == (
        before.value("http_requests_total", **answered, status="200") + 1
    )
