"""Providers that answer 5xx at random, or 429 with Retry-After: every workflow ends
completed, or failed with a domain code and its aggregate marked failed; nothing is
created twice; every retry is counted in ``workflow_retries_total``."""

from __future__ import annotations

import time
from typing import Any

import pytest
from prefect.states import State

from flows.platform.results import ProvisioningOutcome, RotationOutcome
from sandbox.run import Sandbox
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
    state_code,
    sweep,
)
from tests.flows.platform.support import Domain

pytestmark = pytest.mark.faults

WORKFLOWS = (
    "ApplicationEnvironmentProvisioning",
    "BulkEnvironmentProvisioning",
    "SecretRotation",
    "SecretRotationSweep",
)


def retries(control_plane: RestartableControlPlane) -> float:
    return sum(retries_total(control_plane.url, w) for w in WORKFLOWS)


def assert_ended_well(state: State[Any]) -> bool:
    """Completed, or Failed naming a domain code (never a crash, never still running)."""
    assert state.is_completed() or state.is_failed(), state
    if state.is_failed():
        assert state_code(state) not in (None, "internal_error"), state.message
    return state.is_completed()


@pytest.mark.parametrize("rate", [0.05, 0.20], ids=["5%", "20%"])
def test_random_5xx_from_every_provider(
    rate: float, domain: Domain, sandbox: Sandbox, control_plane: RestartableControlPlane
) -> None:
    singles = [domain.environment() for _ in range(2)]
    bulk_envs = environments(domain, 6)
    secrets = [domain.secret(environments=(singles[0],)) for _ in range(2)]
    swept = [domain.secret(environments=(singles[1],)) for _ in range(4)]
    rotated_alone = [s for s, _ in secrets]  # in order: the states are zipped with them
    before = retries(control_plane)
    for seed, server in enumerate(sandbox.servers.values()):
        server.faults.add(failure_rate=rate, failure_status=503, seed=seed)

    # Single runs and the bulk run side by side; then the sweep (it would otherwise race
    # the single rotations for the same due secrets, which is another test's subject).
    states = run_all(
        [
            *(provision(e) for e in singles),
            provision_bulk(bulk_envs),
            *(rotate(s) for s in rotated_alone),
        ]
    )
    states.append(run_all([sweep()])[0])

    injected = sum(sum(s.faults.injected.values()) for s in sandbox.servers.values())
    assert injected > 0
    for server in sandbox.servers.values():  # the checks below read the providers too
        server.faults.clear()
    ended = [assert_ended_well(s) for s in states]
    for env_id, completed in zip(singles, ended[:2], strict=True):
        check_environment(domain, sandbox, env_id, completed)
    for item in states[2].result().items:
        check_environment(
            domain, sandbox, item.environment_id, item.outcome is ProvisioningOutcome.PROVISIONED
        )
    for (secret_id, robot), completed in zip(secrets, ended[3:5], strict=True):
        check_secret(domain, sandbox, secret_id, robot, completed)
    outcomes = {i.secret_id: i for i in states[-1].result().items}
    for secret_id, robot in swept:
        item = outcomes[secret_id]
        assert item.outcome is not RotationOutcome.SKIPPED
        check_secret(domain, sandbox, secret_id, robot, item.outcome is RotationOutcome.ROTATED)
    assert retries(control_plane) > before


def test_rate_limits_are_waited_out_as_retry_after_says(
    domain: Domain, sandbox: Sandbox, control_plane: RestartableControlPlane
) -> None:
    env_id = domain.environment()
    bulk_envs = environments(domain, 2)
    secret_id, robot = domain.secret(environments=(env_id,))
    before = retries(control_plane)
    sandbox.harbor.server.faults.add(
        method="PATCH", path=r"/robots/\d+$", statuses=[429, 429], retry_after=1
    )
    sandbox.github.server.faults.add(
        method="POST", path=r"/orgs/[^/]+/repos$", statuses=[429], retry_after=1
    )
    sandbox.endpoints.server.faults.add(path="/appenv/gitops-verify", statuses=[429], retry_after=1)

    started = time.monotonic()
    states = run_all([provision(env_id), provision_bulk(bulk_envs), rotate(secret_id)])
    elapsed = time.monotonic() - started

    assert all(s.is_completed() for s in states), [s.message for s in states]
    # Two 429s in a row on the refresh, each "Retry-After: 1", although the test's
    # backoff is a few milliseconds.
    assert elapsed >= 2.0
    check_environment(domain, sandbox, env_id, True)
    for env in bulk_envs:
        check_environment(domain, sandbox, env, True)
    check_secret(domain, sandbox, secret_id, robot, True)
    # 2 on the refresh, 1 on a repository creation, 1 on a GitOps check.
    assert retries(control_plane) - before == 4
