"""``idp flow-run``: a flow-run process as a worker starts it, traced to a file.

The run is created in the Prefect test harness with the ``__OTEL_TRACEPARENT`` label of a
span of this test (what the control plane's command would pass), then executed by a
separate process (``python -m idp.cli flow-run <id>``, the engine command a process work
pool runs) with ``IDP_TRACES_FILE``. The file must hold the whole run, flushed before the
process exited, as a child of the test's span; the control plane (in this process)
continues the same trace from the ``traceparent`` headers it received.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prefect.client.orchestration import get_client
from prefect.settings import get_current_settings

from blocks.platform.workflows import ApplicationEnvironmentProvisioningRequest, flow_parameters
from core.settings import PROJECT_ROOT
from core.telemetry import flush_tracing, read_spans, traceparent
from flows.platform.environment_provisioning import application_environment_provisioning
from tests.flows.platform.support import run
from tests.observability.conftest import Platform
from tests.observability.test_traces import SEED_STEPS

ENTRYPOINT = "flows/platform/environment_provisioning.py:application_environment_provisioning"


async def create_run(env_id: str, label: str) -> uuid.UUID:
    request = ApplicationEnvironmentProvisioningRequest(environment_id=env_id)
    async with get_client() as client:
        flow_run = await client.create_flow_run(
            application_environment_provisioning, parameters=flow_parameters(request)
        )
        await client.update_flow_run_labels(flow_run.id, {"__OTEL_TRACEPARENT": label})
    return flow_run.id


def span_id(value: Any) -> int:
    return int(str(value), 16)


@pytest.mark.slow
def test_a_flow_run_process_writes_its_trace_before_it_exits(
    platform: Platform, spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    env_id = platform.domain.environment(secrets=("db-password",))
    traces = tmp_path / "traces.jsonl"
    tracer = trace.get_tracer(__name__)
    with tracer.start_as_current_span("POST /api/v1/applications/{id}/environments") as command:
        label = traceparent()
        assert label is not None
        run_id = run(create_run(env_id, label))
    api_url = get_current_settings().api.url
    assert api_url
    env = {
        **os.environ,
        "PREFECT_API_URL": api_url,
        "PREFECT__FLOW_RUN_ID": str(run_id),
        "PREFECT__FLOW_ENTRYPOINT": ENTRYPOINT,
        "IDP_TRACES_FILE": str(traces),
    }

    done = subprocess.run(
        [sys.executable, "-m", "idp.cli", "flow-run", str(run_id)],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert platform.domain.environment_state(env_id)["status"] == "provisioned"
    written = read_spans(traces)
    [flow] = [s for s in written if s["attributes"].get("prefect.run.id") == str(run_id)]
    assert flow["resource"]["attributes"]["service.name"] == "workflow-engine"
    context = command.get_span_context()
    assert span_id(flow["context"]["trace_id"]) == context.trace_id
    assert span_id(flow["parent_id"]) == context.span_id
    trace_id = flow["context"]["trace_id"]
    mine = [s for s in written if s["context"]["trace_id"] == trace_id]
    assert len(mine) == len(written)  # nothing else: Prefect's own API calls are not traced
    steps = {
        s["attributes"]["idp.step"]: s
        for s in mine
        if s["attributes"].get("prefect.run.type") == "task"
    }
    for name in SEED_STEPS:
        assert steps[name]["parent_id"] == flow["context"]["span_id"], name
    assert not [s for s in mine if str(s["attributes"].get("http.url", "")).startswith(api_url)]
    github = platform.sandbox.github.api_url
    assert [s for s in mine if str(s["attributes"].get("http.url", "")).startswith(github)]
    # The control plane served the run's calls in this process, in the same trace.
    flush_tracing()
    served = [
        s
        for s in spans.get_finished_spans()
        if s.context is not None
        and s.context.trace_id == context.trace_id
        and (s.attributes or {}).get("idp.service") == "control-plane-api"
    ]
    assert {s.name for s in served} >= {
        "GET /internal/v1/environments/{environment_id}",
        "POST /internal/v1/environments/{environment_id}/transitions",
        "POST /internal/v1/events",
        "POST /internal/v1/workflow-runs",
    }
