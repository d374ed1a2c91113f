"""The workflows with their side effects routed through execution-workers.

Same flows, same sandbox, same control plane as the other flow tests; the only change is
the block choice a deployment would make: ``IDP_GIT_BLOCK`` and
``IDP_SECRET_BACKEND_BLOCK`` point at an ``idp-execution-workers`` document, so every
repository, secret and binding call goes flow -> ExecutionWorkers block -> the service
(served by uvicorn in a thread) -> provider blocks -> sandbox. The registry stays on the
Harbor block (the ExecutionWorkers block is no RegistryProvider: see its docstring).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prefect.states import State

from blocks.platform.domain import appenv_repository_name
from blocks.platform.execution_workers import ExecutionWorkers
from blocks.platform.workflows import (
    ApplicationEnvironmentProvisioningRequest,
    ApplicationOnboardingRequest,
    SecretRotationRequest,
)
from blocks.vault import VaultSecretBackend
from core.settings import reset_settings
from flows.platform.application_onboarding import application_onboarding
from flows.platform.environment_provisioning import application_environment_provisioning
from flows.platform.results import SecretRotationResult
from flows.platform.secret_rotation import secret_rotation
from sandbox.run import DEFAULT_GITHUB_ORG, Sandbox
from services.platform.execution_workers.settings import ExecutionWorkersSettings
from tests.flows.platform.conftest import ROUTED_ROLES, platform_env
from tests.flows.platform.support import (
    ControlPlaneServer,
    Domain,
    flow_run_id,
    harbor_accepts,
    robot_secret,
    run,
)
from tests.services.platform.control_plane.live import LiveServer

ROUTED_BLOCK = "idp-execution-workers/default"


@pytest.fixture(scope="module")
def workers_url(sandbox: Sandbox, control_plane_server: ControlPlaneServer) -> Iterator[str]:
    """execution-workers configured like a deployment: the seed's variables (Vault on)."""
    from services.platform.execution_workers.app import create_app

    settings = ExecutionWorkersSettings(**platform_env(sandbox, control_plane_server.url))  # type: ignore[arg-type]
    with LiveServer(create_app(settings)) as server:
        yield server.url


@pytest.fixture(scope="module")
def routed_block(saved_blocks: None, workers_url: str) -> str:
    ExecutionWorkers(url=workers_url).save(ROUTED_BLOCK.split("/")[1], overwrite=True)
    return ROUTED_BLOCK


@pytest.fixture(autouse=True)
def route_through_workers(routed_block: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ROUTED_ROLES:
        monkeypatch.setenv(variable, routed_block)
    reset_settings()


def served(workers_url: str, route: str) -> float:
    """How many 200 answers execution-workers gave on ``route`` (proves the routing)."""
    text = httpx.get(f"{workers_url}/metrics", timeout=10).text
    prefix = f'http_requests_total{{method="POST",route="{route}",service="execution-workers",'
    for line in text.splitlines():
        if line.startswith(prefix) and 'status="200"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_onboarding_through_execution_workers(
    domain: Domain, sandbox: Sandbox, workers_url: str
) -> None:
    app_id = domain.application()
    before = served(workers_url, "/github/repos/files")

    state: State[Any] = run(
        application_onboarding(
            request=ApplicationOnboardingRequest(application_id=app_id), return_state=True
        )
    )

    assert state.is_completed(), state.message
    repo = sandbox.github.state()["repos"][f"{DEFAULT_GITHUB_ORG}/{app_id}"]
    assert {"README.md", "catalog-info.yaml"} <= set(repo["files"][repo["default_branch"]])
    assert domain.application_state(app_id)["status"] == "onboarded"
    assert served(workers_url, "/github/repos/files") == before + 1


def test_provisioning_through_execution_workers(
    domain: Domain, sandbox: Sandbox, workers_url: str
) -> None:
    env_id = domain.environment(secrets=("db-password",))

    state: State[Any] = run(
        application_environment_provisioning(
            request=ApplicationEnvironmentProvisioningRequest(environment_id=env_id),
            return_state=True,
        )
    )

    assert state.is_completed(), state.message
    repo = sandbox.github.state()["repos"][f"{DEFAULT_GITHUB_ORG}/{appenv_repository_name(env_id)}"]
    reviews = repo["protections"][repo["default_branch"]]["required_pull_request_reviews"]
    assert reviews["required_approving_review_count"] >= 1
    vault = sandbox.vault.state()["mounts"]["secret"]
    assert f"idp/appenv/{env_id}/db-password" in vault
    bindings = [b for b in sandbox.endpoints.state()["bindings"] if b["environment_id"] == env_id]
    assert [(b["secret_id"], b["target"]) for b in bindings] == [
        ("db-password", f"k8s:{env_id}/db-password")
    ]
    assert domain.environment_state(env_id)["status"] == "provisioned"
    # The workers reported their side effects, linked to this flow run; the flow its own.
    events = domain.events(env_id)
    assert [e["name"] for e in events] == [
        "appenv_requested",
        "appenv_repository",
        "appenv_branch_protection",
        "appenv_secrets",
        "appenv_secret_bindings",
        "appenv_gitops_verify",
        "workflow_appenv_provisioning_completed",
    ]
    run_id = str(flow_run_id(state))
    assert {e["flow_run_id"] for e in events[1:6]} == {run_id}
    assert {e["result"] for e in events[1:6]} == {"success"}


def test_rotation_through_execution_workers(
    domain: Domain, sandbox: Sandbox, workers_url: str
) -> None:
    env_id = domain.environment(secrets=())
    secret_id, robot = domain.secret(environments=(env_id,))
    old = robot_secret(sandbox, robot)
    before = served(workers_url, "/secrets/bindings/update")

    state: State[Any] = run(
        secret_rotation(request=SecretRotationRequest(secret_id=secret_id), return_state=True)
    )

    assert state.is_completed(), state.message
    stored = VaultSecretBackend.from_env().read_secret_value(secret_id).get_secret_value()
    assert stored != old and harbor_accepts(sandbox, robot, stored)
    assert not harbor_accepts(sandbox, robot, old)
    result = state.result()
    assert isinstance(result, SecretRotationResult)
    version = result.stored.version
    bindings = [b for b in sandbox.endpoints.state()["bindings"] if b["secret_id"] == secret_id]
    assert [(b["environment_id"], b["version"]) for b in bindings] == [(env_id, version)]
    assert domain.secret_state(secret_id)["status"] == "active"
    # Two calls: RotateSecret stored the value, UpdateSecretBindings moved the bindings.
    assert served(workers_url, "/secrets/bindings/update") == before + 2
