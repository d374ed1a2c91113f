"""Compensation on provisioning: a run that fails after creating things removes them,
newest first, each undo a task run and a settled record in the control plane; a run that
asked to keep its partial work leaves them; a retry after a compensation completes cleanly.
"""

from __future__ import annotations

import time
from typing import Any

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.states import State

from blocks.platform.control_plane import ControlPlane
from blocks.platform.domain import appenv_repository_name
from blocks.platform.workflows import ApplicationEnvironmentProvisioningRequest
from flows.platform.environment_provisioning import application_environment_provisioning
from sandbox.run import DEFAULT_GITHUB_ORG, Sandbox
from tests.flows.platform.support import (
    ControlPlaneServer,
    Domain,
    flow_run_id,
    retry_flow_run,
    run,
)

SECRETS = ("db-password", "api-key")


def provision(env_id: str, **options: Any) -> State[Any]:
    request = ApplicationEnvironmentProvisioningRequest(environment_id=env_id, **options)
    return run(application_environment_provisioning(request=request, return_state=True))


def what_exists(sandbox: Sandbox, env_id: str) -> dict[str, Any]:
    repo = f"{DEFAULT_GITHUB_ORG}/{appenv_repository_name(env_id)}"
    keys = sandbox.vault.state()["mounts"]["secret"]
    return {
        "repository": repo in sandbox.github.state()["repos"],
        "secrets": sorted(k.rsplit("/", 1)[1] for k in keys if f"/appenv/{env_id}/" in k),
        "bindings": sorted(
            b["secret_id"]
            for b in sandbox.endpoints.state()["bindings"]
            if b["environment_id"] == env_id
        ),
    }


def task_run_names(run_id: Any, prefix: str) -> list[str]:
    """Names of the run's task runs starting with ``prefix``, in the order they started
    (task-run states reach the API through events: poll for a while)."""

    async def read() -> list[Any]:
        async with get_client() as client:
            return await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))
            )

    deadline = time.monotonic() + 20
    while True:
        found = [t for t in run(read()) if t.name.startswith(prefix) and t.start_time]
        if len(found) >= 3 or time.monotonic() > deadline:
            return [t.name for t in sorted(found, key=lambda t: t.start_time)]
        time.sleep(0.3)


def test_a_failure_at_the_gitops_step_removes_what_the_run_created(
    domain: Domain, sandbox: Sandbox, control_plane_server: ControlPlaneServer
) -> None:
    env_id = domain.environment(secrets=SECRETS)
    sandbox.endpoints.server.faults.add(path="/appenv/gitops-verify", statuses=[403])

    state = provision(env_id)

    assert state.is_failed()
    assert "[forbidden]" in str(state.message)  # the error that matters, not the undo's
    assert what_exists(sandbox, env_id) == {"repository": False, "secrets": [], "bindings": []}
    assert domain.environment_state(env_id)["status"] == "provisioning_failed"
    failed = domain.events(env_id)[-1]
    assert failed["name"] == "workflow_appenv_provisioning_failed"
    assert failed["payload"]["undone"] == [
        "DeleteSecretBindings(CreateSecretBindings)",
        "DeleteSecrets(ProvisionSecrets)",
        "DeleteRepository(MaterializeRepositories)",
    ]
    log = ControlPlane(url=control_plane_server.url).list_compensations(str(flow_run_id(state)))
    assert [(e.step, e.undo, e.done) for e in log.entries] == [
        ("MaterializeRepositories", "DeleteRepository", True),
        ("ProvisionSecrets", "DeleteSecrets", True),
        ("CreateSecretBindings", "DeleteSecretBindings", True),
    ]
    assert log.generation == 3
    assert task_run_names(flow_run_id(state), "Delete") == [
        f"DeleteSecretBindings[{env_id}]",
        f"DeleteSecrets[{env_id}]",
        f"DeleteRepository[{appenv_repository_name(env_id)}]",
    ]


def test_a_run_that_keeps_its_partial_work_leaves_it(domain: Domain, sandbox: Sandbox) -> None:
    env_id = domain.environment(secrets=SECRETS)
    sandbox.endpoints.server.faults.add(path="/appenv/gitops-verify", statuses=[403])

    state = provision(env_id, keep_partial=True)

    assert state.is_failed()
    assert what_exists(sandbox, env_id) == {
        "repository": True,
        "secrets": sorted(SECRETS),
        "bindings": sorted(SECRETS),
    }
    assert domain.events(env_id)[-1]["payload"]["undone"] == []


def test_a_retry_after_a_compensation_provisions_everything_again(
    domain: Domain, sandbox: Sandbox
) -> None:
    env_id = domain.environment(secrets=SECRETS)
    sandbox.endpoints.server.faults.add(path="/appenv/gitops-verify", statuses=[403])
    first = provision(env_id)
    assert first.is_failed()
    assert what_exists(sandbox, env_id)["repository"] is False

    retried = run(retry_flow_run(application_environment_provisioning, flow_run_id(first)))

    assert retried.is_completed(), retried.message
    assert what_exists(sandbox, env_id) == {
        "repository": True,
        "secrets": sorted(SECRETS),
        "bindings": sorted(SECRETS),
    }
    assert domain.environment_state(env_id)["status"] == "provisioned"
    assert [e["name"] for e in domain.events(env_id)] == [
        "appenv_requested",
        "workflow_appenv_provisioning_failed",
        "workflow_appenv_provisioning_completed",
    ]


def test_an_undo_that_fails_is_recorded_and_the_others_still_run(
    domain: Domain, sandbox: Sandbox, control_plane_server: ControlPlaneServer
) -> None:
    env_id = domain.environment(secrets=SECRETS)
    sandbox.endpoints.server.faults.add(path="/appenv/gitops-verify", statuses=[403])
    repo = f"{DEFAULT_GITHUB_ORG}/{appenv_repository_name(env_id)}"
    sandbox.github.server.faults.add(method="DELETE", path=f"/repos/{repo}$", statuses=[403])

    state = provision(env_id)

    assert state.is_failed() and "[forbidden]" in str(state.message)
    assert what_exists(sandbox, env_id) == {"repository": True, "secrets": [], "bindings": []}
    log = ControlPlane(url=control_plane_server.url).list_compensations(str(flow_run_id(state)))
    by_step = {e.step: e for e in log.entries}
    assert by_step["MaterializeRepositories"].done is False
    assert "[forbidden]" in str(by_step["MaterializeRepositories"].error)
    assert by_step["ProvisionSecrets"].done and by_step["CreateSecretBindings"].done
    assert domain.events(env_id)[-1]["payload"]["undone"] == [
        "DeleteSecretBindings(CreateSecretBindings)",
        "DeleteSecrets(ProvisionSecrets)",
    ]
