"""ApplicationEnvironmentProvisioning end to end: the six seed steps over real HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from prefect.states import State

from blocks.platform.domain import appenv_repository_name
from blocks.platform.workflows import ApplicationEnvironmentProvisioningRequest
from flows.platform.environment_provisioning import application_environment_provisioning
from flows.platform.results import ApplicationEnvironmentProvisioningResult
from sandbox.run import DEFAULT_GITHUB_ORG, Sandbox
from tests.flows.platform.support import (
    ControlPlaneServer,
    Domain,
    flow_run_id,
    retry_flow_run,
    run,
)


def provision(env_id: str, **options: Any) -> State[Any]:
    request = ApplicationEnvironmentProvisioningRequest(environment_id=env_id, **options)
    return run(application_environment_provisioning(request=request, return_state=True))


def repo_state(sandbox: Sandbox, env_id: str) -> dict[str, Any]:
    repos: dict[str, Any] = sandbox.github.state()["repos"]
    return dict(repos[f"{DEFAULT_GITHUB_ORG}/{appenv_repository_name(env_id)}"])


def bindings_of(sandbox: Sandbox, env_id: str) -> list[dict[str, Any]]:
    return [b for b in sandbox.endpoints.state()["bindings"] if b["environment_id"] == env_id]


def vault_keys(sandbox: Sandbox, env_id: str) -> dict[str, Any]:
    keys = sandbox.vault.state()["mounts"]["secret"]
    return {k: v for k, v in keys.items() if k.startswith(f"idp/appenv/{env_id}/")}


def test_provisioning_runs_the_six_steps(
    domain: Domain, sandbox: Sandbox, control_plane_server: ControlPlaneServer
) -> None:
    env_id = domain.environment(secrets=("db-password", "api-key"))

    state = provision(env_id)

    assert state.is_completed(), state.message
    result = state.result()
    assert isinstance(result, ApplicationEnvironmentProvisioningResult)
    repo = repo_state(sandbox, env_id)
    assert repo["private"] is True
    protection = repo["protections"][repo["default_branch"]]
    reviews = protection["required_pull_request_reviews"]
    assert reviews["required_approving_review_count"] >= 1
    assert set(vault_keys(sandbox, env_id)) == {
        f"idp/appenv/{env_id}/db-password",
        f"idp/appenv/{env_id}/api-key",
    }
    assert {(b["secret_id"], b["target"]) for b in bindings_of(sandbox, env_id)} == {
        ("db-password", f"k8s:{env_id}/db-password"),
        ("api-key", f"k8s:{env_id}/api-key"),
    }
    assert result.gitops.reconciled is True
    assert domain.environment_state(env_id)["status"] == "provisioned"
    assert domain.event_names(env_id) == [
        "appenv_requested",
        "workflow_appenv_provisioning_completed",
    ]
    reported = control_plane_server.reported_run(flow_run_id(state))
    assert reported is not None and reported["result"] == "success"


def test_provisioning_again_creates_nothing_twice(domain: Domain, sandbox: Sandbox) -> None:
    env_id = domain.environment()
    assert provision(env_id).is_completed()
    repo_before = repo_state(sandbox, env_id)
    vault_before = vault_keys(sandbox, env_id)

    again = provision(env_id)

    assert again.is_completed(), again.message
    result = again.result()
    assert result.repository.created is False
    assert result.protection.changed is False
    name = appenv_repository_name(env_id)
    assert [r for r in sandbox.github.state()["repos"] if r.endswith(f"/{name}")] == [
        f"{DEFAULT_GITHUB_ORG}/{name}"
    ]
    assert repo_state(sandbox, env_id)["branches"] == repo_before["branches"]
    assert vault_keys(sandbox, env_id) == vault_before  # create-only: no new versions
    assert len(bindings_of(sandbox, env_id)) == 2


def test_transient_errors_are_retried_and_counted(
    domain: Domain, sandbox: Sandbox, control_plane_server: ControlPlaneServer
) -> None:
    env_id = domain.environment()
    protection = (
        rf"/repos/{DEFAULT_GITHUB_ORG}/{appenv_repository_name(env_id)}/branches/.*/protection"
    )
    sandbox.github.server.faults.add(method="PUT", path=protection, statuses=[503, 503, 200])
    sandbox.endpoints.server.faults.add(path="/appenv/secret-bindings", statuses=[502, 200])

    state = provision(env_id)

    assert state.is_completed(), state.message
    reported = control_plane_server.reported_run(flow_run_id(state))
    assert reported is not None and reported["retries"] == 3


@pytest.mark.parametrize(
    "server, path, status, code",
    [
        ("github", r"/branches/.*/protection", 403, "forbidden"),
        ("endpoints", "/appenv/secret-bindings", 401, "unauthorized"),
        ("vault", "/v1/secret/data/idp/appenv/", 403, "forbidden"),
    ],
)
def test_a_permanent_error_fails_at_once_and_marks_the_environment_failed(
    server: str,
    path: str,
    status: int,
    code: str,
    domain: Domain,
    sandbox: Sandbox,
    control_plane_server: ControlPlaneServer,
) -> None:
    env_id = domain.environment()
    sandbox.servers[server].faults.add(path=path, statuses=[status])

    state = provision(env_id)

    assert state.is_failed()
    assert f"[{code}]" in str(state.message)
    assert domain.environment_state(env_id)["status"] == "provisioning_failed"
    failed = domain.events(env_id)[-1]
    assert failed["name"] == "workflow_appenv_provisioning_failed"
    assert failed["payload"]["error_code"] == code
    reported = control_plane_server.reported_run(flow_run_id(state))
    assert reported is not None
    assert (reported["result"], reported["retries"]) == ("failure", 0)


def test_gitops_that_never_converges_fails_after_its_polls(
    domain: Domain, sandbox: Sandbox, control_plane_server: ControlPlaneServer
) -> None:
    env_id = domain.environment()
    sandbox.endpoints.force_gitops(env_id, False, "controller is down")
    try:
        state = provision(env_id)
    finally:
        sandbox.endpoints.force_gitops(env_id, None)

    assert state.is_failed()
    assert "[upstream_timeout]" in str(state.message)
    assert domain.environment_state(env_id)["status"] == "provisioning_failed"
    reported = control_plane_server.reported_run(flow_run_id(state))
    assert reported is not None and reported["retries"] == 4  # every poll was a retry


def test_retrying_a_run_that_kept_its_partial_work_skips_the_steps_that_succeeded(
    domain: Domain, sandbox: Sandbox, control_plane_server: ControlPlaneServer
) -> None:
    env_id = domain.environment()
    sandbox.endpoints.server.faults.add(path="/appenv/gitops-verify", statuses=[403])
    first = provision(env_id, keep_partial=True)
    assert first.is_failed() and "[forbidden]" in str(first.message)
    assert domain.environment_state(env_id)["status"] == "provisioning_failed"

    # From now on any call to GitHub, Vault or the bindings endpoint would fail: the retry
    # can only complete if it replays those steps from the first attempt's results.
    sandbox.endpoints.server.faults.clear()
    sandbox.github.server.faults.add(path="/api/v3/", failure_rate=1, failure_status=403)
    sandbox.vault.server.faults.add(path="/v1/", failure_rate=1, failure_status=403)
    sandbox.endpoints.server.faults.add(
        path="/appenv/(secrets|secret-bindings)", failure_rate=1, failure_status=403
    )
    retried = run(retry_flow_run(application_environment_provisioning, flow_run_id(first)))

    assert retried.is_completed(), retried.message
    assert flow_run_id(retried) == flow_run_id(first)
    assert domain.environment_state(env_id)["status"] == "provisioned"
    assert domain.event_names(env_id) == [
        "appenv_requested",
        "workflow_appenv_provisioning_failed",
        "workflow_appenv_provisioning_completed",
    ]
    # Each attempt reports its own outcome: the first under the run id, the retry with ":2".
    first_report = control_plane_server.reported_run(flow_run_id(first))
    second_report = control_plane_server.reported_run(f"{flow_run_id(first)}:2")
    assert first_report is not None and first_report["result"] == "failure"
    assert second_report is not None and second_report["result"] == "success"
