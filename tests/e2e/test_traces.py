"""Through the real platform: the command that asked for an environment, the worker's
flow-run process (started with the pool's ``idp flow-run`` command) and the control
plane's handling of the run's calls are one trace in the stack's traces file."""

from __future__ import annotations

from typing import Any

import pytest

from blocks.platform.domain import WORKFLOW_APPENV_PROVISIONING
from core.telemetry import read_spans
from tests.e2e.support import SLOW_MACHINE_TIMEOUT, Environment, Platform, wait_until
from tests.observability.test_traces import SEED_STEPS

pytestmark = [pytest.mark.e2e, SLOW_MACHINE_TIMEOUT]
COMMAND = "POST /api/v1/applications/{application_id}/environments"
LAST_CALL = "POST /internal/v1/workflow-runs"  # the run reports its outcome last
SERVER, CLIENT = "SpanKind.SERVER", "SpanKind.CLIENT"


def service(span: dict[str, Any]) -> str:
    return str(span["resource"]["attributes"].get("service.name"))


def test_a_provisioning_command_and_its_run_are_one_trace(
    platform: Platform, environment: Environment
) -> None:
    run_id = str(environment.provisioning.id)

    def whole_trace() -> list[dict[str, Any]] | None:
        # The flow-run process flushed at exit; the control plane batches (every ~5 s).
        spans = read_spans(platform.traces_file)
        flows = [s for s in spans if s["attributes"].get("prefect.run.id") == run_id]
        if not flows:
            return None
        trace_id = flows[0]["context"]["trace_id"]
        mine = [s for s in spans if s["context"]["trace_id"] == trace_id]
        names = {s["name"] for s in mine}
        return mine if {COMMAND, LAST_CALL} <= names else None

    spans = wait_until(whole_trace, timeout=60, what="the command's and the run's last call")
    by_id = {s["context"]["span_id"]: s for s in spans}
    [flow] = [s for s in spans if s["attributes"].get("prefect.run.id") == run_id]
    assert service(flow) == "workflow-engine"
    [command] = [s for s in spans if s["name"] == COMMAND]
    assert service(command) == "control-plane-api"
    assert command["parent_id"] is None  # the trace starts at the API call

    # The flow span hangs below the command (through the launcher's label).
    ancestors, parent = [], flow["parent_id"]
    while parent is not None and parent in by_id:
        ancestors.append(by_id[parent])
        parent = by_id[parent]["parent_id"]
    assert command in ancestors

    steps = {
        s["attributes"]["idp.step"]: s
        for s in spans
        if s["attributes"].get("prefect.run.type") == "task" and "idp.step" in s["attributes"]
    }
    for name in SEED_STEPS:
        assert steps[name]["parent_id"] == flow["context"]["span_id"], name
        assert steps[name]["attributes"]["idp.workflow"] == WORKFLOW_APPENV_PROVISIONING
    assert steps["ProvisionSecrets"]["attributes"]["idp.environment_id"] == (
        environment.environment_id
    )

    github = platform.stack.sandbox_env["GITHUB_API_URL"]
    client_calls = [s for s in spans if s["kind"] == CLIENT]
    assert [s for s in client_calls if str(s["attributes"].get("http.url")).startswith(github)]
    # The control plane served the run's calls (server spans below the flow's steps).
    served = [s for s in spans if service(s) == "control-plane-api" and s["kind"] == SERVER]
    assert {s["name"] for s in served} >= {
        COMMAND,
        "GET /internal/v1/environments/{environment_id}",
        "POST /internal/v1/environments/{environment_id}/transitions",
        "POST /internal/v1/events",
        LAST_CALL,
    }

    # Nothing of the sandbox's credentials reached the file.
    text = platform.traces_file.read_text()
    for name in ("GITHUB_TOKEN", "HARBOR_ROBOT_PASSWORD", "VAULT_TOKEN", "INTERNAL_AUTH_TOKEN"):
        value = platform.stack.sandbox_env.get(name)
        assert not value or value not in text, name
