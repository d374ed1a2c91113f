"""A control-plane command and the workflow run it starts are one trace: the launcher gives
the run the ``__OTEL_TRACEPARENT`` label of the command's server span, which Prefect's
engine opens the flow span under (``test_flow_run_process.py`` runs that side)."""

from __future__ import annotations

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from blocks.platform.domain import WORKFLOW_APPLICATION_ONBOARDING
from core.telemetry import flush_tracing
from services.platform.control_plane.launcher import TRACEPARENT_LABEL
from tests.e2e.support import unique, wait_until
from tests.observability.conftest import Platform
from tests.observability.spans import attrs


def test_a_command_passes_its_trace_to_the_run_it_starts(
    platform: Platform, spans: InMemorySpanExporter
) -> None:
    name = unique("traced")
    launcher = platform.control_plane.launcher
    with platform.control_plane.client() as client:
        response = client.post("/api/v1/applications", json={"name": name, "team": "obs"})
    assert response.status_code == 201, response.text
    [launch] = [
        launch
        for launch in launcher.launches
        if launch.workflow == WORKFLOW_APPLICATION_ONBOARDING
        and launch.parameters == {"request": {"application_id": name}}
    ]
    version, trace_id, parent_id, flags = launch.labels[TRACEPARENT_LABEL].split("-")
    assert (version, flags) == ("00", "01")

    def server_spans() -> list[ReadableSpan] | None:
        flush_tracing()
        found = [
            s
            for s in spans.get_finished_spans()
            if s.kind is SpanKind.SERVER
            and attrs(s).get("idp.service") == "control-plane-api"
            and s.name.startswith("POST /api/v1/applications")
            and s.context is not None
            and f"{s.context.trace_id:032x}" == trace_id
        ]
        return found or None

    # The server span ends after the client has its answer: wait for it to finish.
    [server] = wait_until(server_spans, timeout=10, what="the command's server span")
    # The label names the command's server span (or a span below it) as the run's parent.
    below = {
        f"{s.context.span_id:016x}"
        for s in spans.get_finished_spans()
        if s.context is not None and f"{s.context.trace_id:032x}" == trace_id
    }
    assert parent_id in below
    assert server.context is not None


def test_a_run_started_outside_a_trace_carries_no_label(platform: Platform) -> None:
    import asyncio

    from blocks.platform.workflows import ApplicationOnboardingRequest

    launcher = platform.control_plane.launcher
    request = ApplicationOnboardingRequest(application_id=unique("untraced"))
    asyncio.run(
        launcher.launch(WORKFLOW_APPLICATION_ONBOARDING, request, idempotency_key=unique("k"))
    )
    assert launcher.launches[-1].labels == {}
