"""A span per handler with attributes that name things but never hold secret values, and
the seed's metrics on /metrics."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from sandbox.run import HARBOR_PROJECT, Sandbox
from tests.services.platform.execution_workers.support import unique


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    """Collect finished spans. The global provider can be set once per process, so join
    one an earlier test installed instead of replacing it."""
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


@pytest.fixture
def spans(exporter: InMemorySpanExporter) -> Iterator[InMemorySpanExporter]:
    exporter.clear()
    yield exporter
    exporter.clear()


def _span(spans: InMemorySpanExporter, name: str) -> ReadableSpan:
    [span] = [s for s in spans.get_finished_spans() if s.name == name]
    return span


def test_a_handler_span_names_repository_environment_and_provider(
    client: TestClient, spans: InMemorySpanExporter
) -> None:
    env = unique("env")
    client.post("/appenv/branch-protection", json={"repository": f"appenv-{env}"})
    client.post("/github/repos", json={"name": f"appenv-{env}"})
    client.post("/appenv/branch-protection", json={"repository": f"appenv-{env}"})

    failed, ok = [
        s
        for s in spans.get_finished_spans()
        if s.name == "execution_workers.ensure_branch_protection"
    ]
    assert ok.attributes is not None and failed.attributes is not None
    assert ok.attributes["idp.repository"] == f"appenv-{env}"
    assert ok.attributes["idp.environment_id"] == env
    assert ok.attributes["idp.provider"] == "github"
    assert ok.status.status_code is trace.StatusCode.UNSET
    assert failed.status.status_code is trace.StatusCode.ERROR
    assert failed.attributes["idp.error.code"] == "not_found"


def test_undo_spans_name_the_operation_and_what_they_removed(
    client: TestClient, spans: InMemorySpanExporter
) -> None:
    env = unique("env")
    client.post("/github/repos/delete", json={"name": f"appenv-{env}"})
    binding = {"secret_id": "db", "environment_id": env, "target": f"k8s:{env}/db"}
    client.post("/appenv/secret-bindings/delete", json={"bindings": [binding]})
    client.post("/appenv/secrets/delete", json={"environment_id": env, "secrets": ["db"]})

    repository = _span(spans, "execution_workers.delete_repository")
    bindings = _span(spans, "execution_workers.delete_secret_bindings")
    secrets = _span(spans, "execution_workers.delete_secrets")
    assert repository.attributes is not None and bindings.attributes is not None
    assert repository.attributes["idp.repository"] == f"appenv-{env}"
    assert repository.attributes["idp.environment_id"] == env
    assert repository.attributes["idp.provider"] == "github"
    assert bindings.attributes["idp.secret_id"] == "db"
    assert secrets.attributes == {
        "idp.environment_id": env,
        "idp.provider": "secret-endpoints",
    }


def test_rotation_spans_hold_no_secret_value(
    client: TestClient, sandbox: Sandbox, spans: InMemorySpanExporter
) -> None:
    secret_id, value = unique("harbor"), "v4lue-" + unique("s")
    client.post(
        "/secrets/bindings/update",
        json={"secret_id": secret_id, "source": {"kind": "value", "value": value}},
    )
    client.post(
        "/secrets/bindings/update",
        json={
            "secret_id": secret_id,
            "source": {
                "kind": "harbor-rotation",
                "robot": "deployer",
                "project": HARBOR_PROJECT,
                "rotation_id": unique("run"),
            },
        },
    )
    rotated = sandbox.harbor.robot_secret(f"robot${HARBOR_PROJECT}+deployer")

    finished = [
        s
        for s in spans.get_finished_spans()
        if s.name == "execution_workers.update_secret_bindings"
    ]
    assert len(finished) == 2
    attributes = [dict(s.attributes or {}) for s in finished]
    assert attributes[1]["idp.provider"] == "harbor"
    assert attributes[1]["idp.secret_backend"] == "secret-endpoints"
    assert attributes[1]["idp.secret_id"] == secret_id
    everything = repr([(s.attributes, s.events, s.status) for s in finished])
    assert value not in everything and rotated not in everything


def test_metrics_count_requests_by_route_template(client: TestClient) -> None:
    client.post("/github/repos", json={"name": unique("repo")})
    client.post("/github/repos", json={})
    text = client.get("/metrics").text

    assert (
        'http_requests_total{method="POST",route="/github/repos",'
        'service="execution-workers",status="200"} 1.0' in text
    )
    assert (
        'http_requests_total{method="POST",route="/github/repos",'
        'service="execution-workers",status="422"} 1.0' in text
    )
    assert "# TYPE downstream_errors_total counter" in text
