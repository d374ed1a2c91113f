"""BulkEnvironmentProvisioning: the provisioning steps per environment, many at once, every
environment's outcome recorded and one failure stopping no other."""

from __future__ import annotations

import inspect
import json
import time
from typing import Any

import pytest
from prefect.states import State

from blocks.platform.domain import appenv_repository_name
from blocks.platform.workflows import BulkEnvironmentProvisioningRequest
from flows.platform.bulk_environment_provisioning import bulk_environment_provisioning
from flows.platform.results import BulkEnvironmentProvisioningResult, ProvisioningOutcome
from sandbox.run import DEFAULT_GITHUB_ORG, Sandbox
from tests.flows.platform.support import (
    ControlPlaneServer,
    Domain,
    flow_run_id,
    read_artifacts,
    run,
)


def bulk(environment_ids: list[str], **request: Any) -> State[Any]:
    body = BulkEnvironmentProvisioningRequest(environment_ids=environment_ids, **request)
    return run(bulk_environment_provisioning(request=body, return_state=True))


def environments(domain: Domain, count: int) -> list[str]:
    """``count`` requested environments of one onboarded application."""
    app_id = domain.application(onboarded=True)
    path = f"/api/v1/applications/{app_id}/environments"
    return [str(domain.post(path, {"name": f"e{i}"})["id"]) for i in range(count)]


def test_every_environment_is_provisioned_once_and_a_failure_stops_no_other(
    domain: Domain, sandbox: Sandbox, control_plane_server: ControlPlaneServer
) -> None:
    env_ids = environments(domain, 6)
    broken = env_ids[2]
    repo = f"{DEFAULT_GITHUB_ORG}/{appenv_repository_name(broken)}"
    sandbox.github.server.faults.add(path=f"/repos/{repo}/branches/main/protection", statuses=[403])

    state = bulk([*env_ids, env_ids[0]], max_concurrency=3)  # a duplicate counts once

    assert state.is_completed(), state.message
    result = state.result()
    assert isinstance(result, BulkEnvironmentProvisioningResult)
    assert (result.requested, result.provisioned, result.failed) == (6, 5, 1)
    outcomes = {item.environment_id: item for item in result.items}
    assert set(outcomes) == set(env_ids)
    assert (outcomes[broken].outcome, outcomes[broken].error_code) == (
        ProvisioningOutcome.FAILED,
        "forbidden",
    )
    assert domain.environment_state(broken)["status"] == "provisioning_failed"
    assert domain.event_names(broken)[-1] == "workflow_appenv_provisioning_failed"
    repos = sandbox.github.state()["repos"]
    bindings = sandbox.endpoints.state()["bindings"]
    for env_id in env_ids:
        if env_id == broken:
            continue
        assert outcomes[env_id].outcome is ProvisioningOutcome.PROVISIONED
        assert outcomes[env_id].duration_seconds > 0
        assert domain.environment_state(env_id)["status"] == "provisioned"
        assert domain.event_names(env_id)[-1] == "workflow_appenv_provisioning_completed"
        protected = repos[f"{DEFAULT_GITHUB_ORG}/{appenv_repository_name(env_id)}"]["protections"]
        assert protected["main"]["required_pull_request_reviews"][
            "required_approving_review_count"
        ] == (1)
        assert [b["target"] for b in bindings if b["environment_id"] == env_id] == [
            f"k8s:{env_id}/app-config"
        ]
    artifacts = {a.type: a for a in run(read_artifacts(flow_run_id(state)))}
    assert len(json.loads(str(artifacts["table"].data))) == 6
    assert float(artifacts["progress"].data) == 100.0  # type: ignore[arg-type]
    reported = control_plane_server.reported_run(flow_run_id(state))
    assert reported is not None
    assert (reported["workflow"], reported["result"]) == ("BulkEnvironmentProvisioning", "failure")


def test_running_it_again_creates_nothing_twice_and_retries_transient_errors(
    domain: Domain, sandbox: Sandbox
) -> None:
    env_ids = environments(domain, 2)
    assert bulk(env_ids).result().failed == 0
    # The second run meets a 503 on the bindings endpoint once: Prefect retries the item.
    sandbox.endpoints.server.faults.add(path="/appenv/secret-bindings", statuses=[503])

    result = bulk(env_ids).result()

    assert result.provisioned == 2
    assert sum(item.retries for item in result.items) == 1
    bindings = sandbox.endpoints.state()["bindings"]
    for env_id in env_ids:
        assert len([b for b in bindings if b["environment_id"] == env_id]) == 1


def test_an_unknown_environment_fails_alone_without_being_touched(domain: Domain) -> None:
    known = environments(domain, 1)[0]

    result = bulk(["no-such-env", known]).result()

    outcomes = {item.environment_id: item for item in result.items}
    assert outcomes["no-such-env"].error_code == "not_found"
    assert outcomes["no-such-env"].status is None  # never marked
    assert outcomes[known].outcome is ProvisioningOutcome.PROVISIONED


def test_at_most_max_concurrency_environments_are_in_flight(
    domain: Domain, sandbox: Sandbox
) -> None:
    env_ids = environments(domain, 6)
    # Each gitops check takes 200 ms: 6 of them, 2 at a time, need at least 0.6 s.
    sandbox.endpoints.server.faults.add(path="/appenv/gitops-verify", latency_ms=200)

    started = time.monotonic()
    assert bulk(env_ids, max_concurrency=2).result().provisioned == 6

    assert time.monotonic() - started >= 0.6


def test_the_flow_takes_one_request_and_returns_one_result() -> None:
    signature = inspect.signature(bulk_environment_provisioning.fn, eval_str=True)
    assert signature.parameters["request"].annotation is BulkEnvironmentProvisioningRequest
    assert signature.return_annotation is BulkEnvironmentProvisioningResult
    assert bulk_environment_provisioning.persist_result is True
    with pytest.raises(ValueError, match="environment_ids"):
        BulkEnvironmentProvisioningRequest(environment_ids=[])
