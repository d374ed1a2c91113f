"""One workflow run is one trace: flow span, a span per seed step, the HTTP calls below
them, and the control plane's server spans joined through the W3C ``traceparent``."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from prefect.states import State

from blocks.platform.domain import WORKFLOW_APPENV_PROVISIONING, appenv_repository_name
from core.telemetry import flush_tracing
from sandbox.run import DEFAULT_GITHUB_ORG
from tests.flows.platform.support import flow_run_id
from tests.observability.conftest import Platform
from tests.observability.spans import Tree, attrs
from tests.observability.workflows import provision

SEED_STEPS = (
    "MaterializeRepositories",
    "ApplyBranchProtection",
    "ProvisionSecrets",
    "CreateSecretBindings",
    "VerifyGitOpsReconciliation",
    "FinalizeApplicationEnvironmentProvisioning",
)
CONTROL_PLANE = "control-plane-api"


def trace_of(spans: InMemorySpanExporter, state: State[Any]) -> tuple[ReadableSpan, Tree]:
    """The flow run's span and every span of its trace."""
    flush_tracing()
    finished = spans.get_finished_spans()
    run_id = str(flow_run_id(state))
    [flow] = [s for s in finished if attrs(s).get("prefect.run.id") == run_id]
    assert flow.context is not None
    trace_id = flow.context.trace_id
    # Prefect's spans of this run (the only run since the exporter was cleared) are all in it.
    prefect = [s for s in finished if "prefect.run.type" in attrs(s)]
    assert {s.context.trace_id for s in prefect if s.context} == {trace_id}
    return flow, Tree([s for s in finished if s.context and s.context.trace_id == trace_id])


def test_one_provisioning_run_is_one_trace(platform: Platform, spans: InMemorySpanExporter) -> None:
    env_id = platform.domain.environment(secrets=("db-password",))
    spans.clear()

    state = provision(env_id)

    assert state.is_completed(), state.message
    flow, tree = trace_of(spans, state)
    assert flow.parent is None
    assert attrs(flow)["idp.workflow"] == WORKFLOW_APPENV_PROVISIONING
    assert attrs(flow)["idp.environment_id"] == env_id
    assert attrs(flow)["idp.result"] == "success"
    for name in SEED_STEPS:
        [step] = tree.steps(name)
        assert tree.parent(step) is flow, name
        assert attrs(step)["idp.workflow"] == WORKFLOW_APPENV_PROVISIONING
        assert tree.below(step), f"{name} made no traced call"

    repository = appenv_repository_name(env_id)
    [materialize] = tree.steps("MaterializeRepositories")
    assert attrs(materialize)["idp.repository"] == repository
    assert attrs(materialize)["idp.provider"] == "github"
    [call] = [s for s in tree.below(materialize) if s.name == "github.ensure_repository"]
    assert attrs(call)["idp.repository"] == repository
    github = platform.sandbox.github.api_url
    assert tree.clients(f"{github}/orgs/{DEFAULT_GITHUB_ORG}/repos", under=call)
    [protect] = tree.steps("ApplyBranchProtection")
    assert tree.clients(f"{github}/repos/{DEFAULT_GITHUB_ORG}/{repository}", under=protect)
    [secrets] = tree.steps("ProvisionSecrets")
    assert attrs(secrets)["idp.environment_id"] == env_id
    assert attrs(secrets)["idp.provider"] == "vault-secret-backend"
    assert tree.clients(platform.sandbox.vault.url, under=secrets)

    # The control plane continued the trace: its server span is the child of our client span.
    [finalize] = tree.steps("FinalizeApplicationEnvironmentProvisioning")
    assert attrs(finalize)["idp.provider"] == "control-plane"
    [client] = tree.clients(platform.control_plane.url, under=finalize)
    [server] = [s for s in tree.servers(CONTROL_PLANE) if tree.parent(s) is client]
    assert server.name == "POST /internal/v1/environments/{environment_id}/transitions"
    # Every call the run made to the control plane was answered inside the trace.
    calls = tree.clients(platform.control_plane.url)
    assert len(calls) >= len(["validate", "mark", "finalize", "event", "report"])
    assert {tree.parent(s) for s in tree.servers(CONTROL_PLANE)} == set(calls)


def test_a_retried_step_shows_every_attempt_under_one_step_span(
    platform: Platform, spans: InMemorySpanExporter
) -> None:
    env_id = platform.domain.environment(secrets=("db-password",))
    repository = appenv_repository_name(env_id)
    platform.sandbox.github.server.faults.add(
        method="PUT",
        path=rf"/repos/{DEFAULT_GITHUB_ORG}/{repository}/branches/.*/protection",
        statuses=[503, 200],
    )
    spans.clear()

    state = provision(env_id)

    assert state.is_completed(), state.message
    flow, tree = trace_of(spans, state)
    [step] = tree.steps("ApplyBranchProtection")
    calls = [s for s in tree.below(step) if s.name == "github.ensure_branch_protection"]
    assert [attrs(c).get("idp.error.code") for c in calls] == ["upstream_unavailable", None]
    assert calls[0].status.status_code == StatusCode.ERROR
    assert attrs(flow)["idp.retries"] == 1


@pytest.mark.parametrize(
    "server, path, code",
    [
        ("github", r"/branches/.*/protection", "forbidden"),
        ("vault", "/v1/secret/data/idp/appenv/", "forbidden"),
    ],
)
def test_a_failed_run_names_the_error_code_on_its_spans(
    platform: Platform, spans: InMemorySpanExporter, server: str, path: str, code: str
) -> None:
    env_id = platform.domain.environment(secrets=("db-password",))
    platform.sandbox.servers[server].faults.add(path=path, statuses=[403])
    spans.clear()

    state = provision(env_id)

    assert state.is_failed()
    flow, tree = trace_of(spans, state)
    assert flow.status.status_code == StatusCode.ERROR
    assert attrs(flow)["idp.result"] == "failure"
    assert attrs(flow)["idp.error.code"] == code
    failed = [s for s in tree.spans if attrs(s).get("idp.error.code") == code and s is not flow]
    assert failed and all(s.status.status_code == StatusCode.ERROR for s in failed)


def test_routed_through_execution_workers_the_trace_crosses_the_service(
    platform: Platform, routed: str, spans: InMemorySpanExporter
) -> None:
    env_id = platform.domain.environment(secrets=("db-password",))
    spans.clear()

    state = provision(env_id)

    assert state.is_completed(), state.message
    _, tree = trace_of(spans, state)
    [materialize] = tree.steps("MaterializeRepositories")
    assert attrs(materialize)["idp.provider"] == "execution-workers"
    [client] = tree.clients(f"{routed}/github/repos", under=materialize)
    # The service continues the trace: its server span, its handler span, the handler's
    # GitHub calls and the appenv_repository event it reports to the control plane.
    [server] = [s for s in tree.servers("execution-workers") if tree.parent(s) is client]
    assert server.name == "POST /github/repos"
    [handler] = [s for s in tree.below(server) if s.name == "execution_workers.ensure_repository"]
    assert tree.clients(platform.sandbox.github.api_url, under=handler)
    [report] = tree.clients(f"{platform.control_plane.url}/internal/v1/events", under=handler)
    assert [tree.parent(s) for s in tree.servers(CONTROL_PLANE) if tree.parent(s) is report]
