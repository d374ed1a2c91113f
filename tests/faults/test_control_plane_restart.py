"""control-plane-api restarted while workflows run: their calls to it fail for a moment
(refused, dropped keep-alive connections), are retried, and every run still finishes with
its aggregate in a final state, each domain event recorded once."""

from __future__ import annotations

import pytest

from blocks.platform.domain import appenv_repository_name
from core.settings import reset_settings
from sandbox.run import DEFAULT_GITHUB_ORG, Sandbox
from tests.faults.support import (
    RestartableControlPlane,
    check_environment,
    check_secret,
    environments,
    provision,
    provision_bulk,
    retries_total,
    rotate,
    run_all,
)
from tests.flows.platform.support import Domain

pytestmark = pytest.mark.faults

WORKFLOWS = ("ApplicationEnvironmentProvisioning", "BulkEnvironmentProvisioning", "SecretRotation")


def test_a_restart_mid_run_is_retried_through(
    domain: Domain,
    sandbox: Sandbox,
    control_plane: RestartableControlPlane,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Control-plane retries wait 1, 2, 4 s (x jitter): longer than the restart.
    monkeypatch.setenv("IDP_RETRY_DELAY_SCALE", "5")
    reset_settings()
    env_id = domain.environment()
    bulk_envs = environments(domain, 4)
    secret_id, robot = domain.secret(environments=(env_id,))
    for server in sandbox.servers.values():  # runs long enough to be caught mid-way
        server.faults.add(latency_ms=100)

    # Down for ~2 s from the moment the first environment has its repository: every run
    # is then between its first and its last control-plane call.
    repos = [f"{DEFAULT_GITHUB_ORG}/{appenv_repository_name(e)}" for e in bulk_envs]
    restart = control_plane.restart_when(
        lambda: any(r in sandbox.github.state()["repos"] for r in repos), down_seconds=1.5
    )
    states = run_all([provision(env_id), provision_bulk(bulk_envs, 2), rotate(secret_id)])
    restart.join()

    assert all(s.is_completed() for s in states), [s.message for s in states]
    for env in (env_id, *bulk_envs):
        check_environment(domain, sandbox, env, True)  # completed event exactly once
    check_secret(domain, sandbox, secret_id, robot, True)
    events = [e["name"] for e in domain.events(secret_id)]
    assert events.count("workflow_secret_rotation_completed") == 1
    # Counters restarted with the service; the runs reported after it came back.
    assert sum(retries_total(control_plane.url, w) for w in WORKFLOWS) >= 1
