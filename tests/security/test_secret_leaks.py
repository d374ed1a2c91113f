"""No secret value used in a run shows up anywhere the platform keeps or sends things.

Extends ``tests/flows/platform/test_no_secret_leaks.py`` (same log collector, Vault and result
readers) to the whole platform with every credential set: ``INTERNAL_AUTH_TOKEN`` required
by the control plane and the secret endpoints, random sandbox tokens, all five workflows
(onboarding, provisioning, bulk provisioning, rotation incl. a failed-then-retried one, a
sweep whose store fails after Harbor issued a value). Then it searches:

- every log record of the process (services run in it) and the runs' logs in Prefect;
- the Prefect API as a UI user sees it: flow runs (parameters, state history), task runs,
  artifacts, every event since the start, block documents, variables, deployments;
- every run's result and the result storage;
- every exported span (name, attributes, events, resource);
- the control-plane database, dumped row by row.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prefect.settings import get_current_settings
from prefect.states import State
from prefect.types._datetime import now

from blocks.platform.workflows import (
    ApplicationEnvironmentProvisioningRequest,
    ApplicationOnboardingRequest,
    BulkEnvironmentProvisioningRequest,
    SecretRotationRequest,
    SecretRotationSweepRequest,
)
from blocks.vault import VaultSecretBackend
from core.telemetry import configure_tracing, flush_tracing
from flows.platform.application_onboarding import application_onboarding
from flows.platform.bulk_environment_provisioning import bulk_environment_provisioning
from flows.platform.environment_provisioning import application_environment_provisioning
from flows.platform.secret_rotation import secret_rotation
from flows.platform.secret_rotation_sweep import secret_rotation_sweep
from sandbox.harbor import DEFAULT_ROTATOR_SECRET
from sandbox.run import Sandbox
from tests.flows.platform.support import (
    Domain,
    flow_run_id,
    read_logs,
    retry_flow_run,
    robot_secret,
    run,
)
from tests.flows.platform.test_no_secret_leaks import every_log_line, result_files, vault_values
from tests.security.conftest import INTERNAL_TOKEN, SecuredControlPlane

__all__ = ["every_log_line"]  # the fixture, reused
pytestmark = pytest.mark.security


@pytest.fixture
def spans(prefect_harness: None) -> Iterator[InMemorySpanExporter]:
    """Every span finished during the test (tracing on, as an entrypoint would set it)."""
    exporter = InMemorySpanExporter()
    api = get_current_settings().api.url or ""
    configure_tracing("idp-security-tests", exporters=[exporter], skip_urls=[api])
    yield exporter
    exporter.clear()


def prefect_api_texts(run_ids: list[uuid.UUID], since: Any) -> list[str]:
    """What the Prefect API answers about the runs (and everything global) as JSON text."""
    ids = [str(r) for r in run_ids]
    runs = {"flow_runs": {"id": {"any_": ids}}}
    texts: list[str] = []
    with httpx.Client(base_url=str(get_current_settings().api.url), timeout=30) as api:

        def post(path: str, body: dict[str, Any]) -> Any:
            response = api.post(path, json=body)
            response.raise_for_status()
            texts.append(response.text)
            return response.json()

        post("/flow_runs/filter", runs)
        post("/task_runs/filter", runs)
        post("/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": ids}}})
        post("/block_documents/filter", {})
        post("/variables/filter", {})
        post("/deployments/filter", {})
        for run_id in ids:
            texts.append(api.get("/flow_run_states/", params={"flow_run_id": run_id}).text)
        # The event persister writes asynchronously: wait until the last run's events are in.
        deadline = time.monotonic() + 20
        while True:
            page = post("/events/filter", {"filter": {"occurred": {"since": since.isoformat()}}})
            events, next_page = page["events"], page.get("next_page")
            while next_page:
                more = api.get(next_page).json()
                texts.append(json.dumps(more))
                events += more["events"]
                next_page = more.get("next_page")
            names = {e["event"] for e in events}
            if "workflow_secret_rotation_failed" in names or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert "workflow_appenv_provisioning_completed" in names
    return texts


def database_rows(control_plane: SecuredControlPlane) -> list[str]:
    """The control-plane database, every table and row, as SQL text."""
    connection = sqlite3.connect(control_plane.database_path)
    try:
        return list(connection.iterdump())
    finally:
        connection.close()


def span_texts(exporter: InMemorySpanExporter) -> list[str]:
    flush_tracing()
    return [span.to_json(indent=None) for span in exporter.get_finished_spans()]


def test_no_secret_value_reaches_logs_prefect_spans_or_the_database(
    platform: Domain,
    sandbox: Sandbox,
    control_plane: SecuredControlPlane,
    every_log_line: list[str],
    spans: InMemorySpanExporter,
) -> None:
    domain = platform
    since = now("UTC")
    spans.clear()
    app_id = domain.application()
    env_id = domain.environment()
    bulk_app = domain.application(onboarded=True)
    bulk_envs = [
        str(domain.post(f"/api/v1/applications/{bulk_app}/environments", {"name": n})["id"])
        for n in ("e1", "e2")
    ]
    secrets = [domain.secret(environments=(env_id,)) for _ in range(4)]
    (rotated, _), (pending, _), (swept, _), (lost, _) = secrets
    robots = [robot for _, robot in secrets]
    before = [robot_secret(sandbox, r) for r in robots]

    states: list[State[Any]] = [
        run(
            application_onboarding(
                request=ApplicationOnboardingRequest(application_id=app_id), return_state=True
            )
        ),
        run(
            application_environment_provisioning(
                request=ApplicationEnvironmentProvisioningRequest(environment_id=env_id),
                return_state=True,
            )
        ),
        run(
            bulk_environment_provisioning(
                request=BulkEnvironmentProvisioningRequest(environment_ids=bulk_envs),
                return_state=True,
            )
        ),
        run(secret_rotation(request=SecretRotationRequest(secret_id=rotated), return_state=True)),
    ]
    sandbox.endpoints.server.faults.add(path="/secrets/bindings/update", statuses=[403])
    failed = run(
        secret_rotation(request=SecretRotationRequest(secret_id=pending), return_state=True)
    )
    states += [failed, run(retry_flow_run(secret_rotation, flow_run_id(failed)))]
    sandbox.vault.server.faults.add(path=f"/data/idp/secrets/{lost}$", statuses=[403])
    states.append(
        run(secret_rotation_sweep(request=SecretRotationSweepRequest(), return_state=True))
    )
    assert [s.type.value for s in states] == [
        "COMPLETED",
        "COMPLETED",
        "COMPLETED",
        "COMPLETED",
        "FAILED",
        "COMPLETED",
        "COMPLETED",
    ]
    outcomes = {i.secret_id: i.outcome.value for i in states[-1].result().items}
    assert outcomes == {swept: "rotated", lost: "failed"}

    after = [robot_secret(sandbox, r) for r in robots]
    assert not set(before) & set(after)  # every robot was rotated (the lost one too)
    credentials = [
        INTERNAL_TOKEN,
        sandbox.github.token,
        sandbox.vault.token,
        DEFAULT_ROTATOR_SECRET,
        VaultSecretBackend.from_env().token.get_secret_value(),
    ]
    values = sorted({*before, *after, *vault_values(sandbox), *credentials})
    assert len(values) >= 15

    run_ids = sorted({flow_run_id(s) for s in states})
    haystacks = {
        "process logs": every_log_line,
        "prefect logs": [log.message for log in run(read_logs(run_ids))],
        "prefect api": prefect_api_texts(run_ids, since),
        "results": [json.dumps(s.result(raise_on_failure=False), default=str) for s in states],
        "result storage": result_files(),
        "spans": span_texts(spans),
        "control-plane database": database_rows(control_plane),
    }
    assert all(haystacks.values()), {k: len(v) for k, v in haystacks.items()}
    # Name a leaked value by its index, so the failure message does not leak it either.
    leaks = {
        where: sorted({f"value #{i}" for i, v in enumerate(values) for t in texts if v in t})
        for where, texts in haystacks.items()
    }
    assert leaks == {where: [] for where in haystacks}
    # The control: the same search finds the token where Prefect keeps it on purpose (a
    # block document read with include_secrets), so a leak in a haystack would be found.
    shown = httpx.post(
        f"{get_current_settings().api.url}/block_documents/filter",
        json={"include_secrets": True},
        timeout=30,
    ).text
    assert INTERNAL_TOKEN in shown
