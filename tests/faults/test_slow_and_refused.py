"""Providers that answer after the timeout, or refuse connections for 10 s: the call is
abandoned and retried, work the provider did for the abandoned call is adopted rather than
done twice, and the workflows finish once the provider is back."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

import flows.platform.environment_provisioning
from core.settings import reset_settings
from sandbox.run import Sandbox
from tasks.platform.secrets import VERIFY_GITOPS_RECONCILIATION
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


def test_answers_slower_than_the_timeout_are_retried_without_duplicates(
    domain: Domain,
    sandbox: Sandbox,
    control_plane: RestartableControlPlane,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env_id = domain.environment()
    bulk_envs = environments(domain, 2)
    secret_id, robot = domain.secret(environments=(env_id,))
    # The blocks give up on a call after 2 s here (PROVIDER_TIMEOUT_SECONDS). These routes
    # do their work at once but answer 3 s later, the first time: the retry meets the
    # repository, the Vault version, the binding already there, and Harbor issues a second
    # robot secret (the one stored) after the first.
    slow = {
        sandbox.github.server: r"/orgs/[^/]+/repos$",
        sandbox.vault.server: r"/secret/data/idp/appenv/",
        sandbox.endpoints.server: r"/appenv/secret-bindings$",
        sandbox.harbor.server: r"/robots/\d+$",
    }
    for server, path in slow.items():
        server.faults.add(path=path, response_delay_ms=3000, times=1)
    # A request stuck in a queue past the timeout (never handled, as the client gave up).
    sandbox.harbor.server.faults.add(path=r"/robots$", latency_ms=3000, times=1)
    # And a task whose own timeout fires first (60 s in production, 1 s here).
    one_second = replace(VERIFY_GITOPS_RECONCILIATION.policy, timeout_seconds=1)
    monkeypatch.setattr(
        flows.platform.environment_provisioning,
        "VERIFY_GITOPS_RECONCILIATION",
        replace(VERIFY_GITOPS_RECONCILIATION, policy=one_second),
    )
    sandbox.endpoints.server.faults.add(path="/appenv/gitops-verify$", latency_ms=1500, times=1)
    before = sum(retries_total(control_plane.url, w) for w in WORKFLOWS)

    states = run_all([provision(env_id), provision_bulk(bulk_envs), rotate(secret_id)])

    assert all(s.is_completed() for s in states), [s.message for s in states]
    time.sleep(1.5)  # every late answer has been sent (to nobody) by now
    for env in (env_id, *bulk_envs):
        check_environment(domain, sandbox, env, True)
    check_secret(domain, sandbox, secret_id, robot, True)
    # One retry per slow route at least (the gitops timeout may hit the bulk run instead,
    # whose step timeout is the production one, so it just waits).
    assert sum(retries_total(control_plane.url, w) for w in WORKFLOWS) - before >= 5


def test_connections_refused_for_ten_seconds_are_outlasted(
    domain: Domain,
    sandbox: Sandbox,
    control_plane: RestartableControlPlane,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Production backoff x 3: four provider retries span more than 10 s even with jitter.
    monkeypatch.setenv("IDP_RETRY_DELAY_SCALE", "3")
    reset_settings()
    env_id = domain.environment()
    bulk_envs = environments(domain, 2)
    secret_id, robot = domain.secret(environments=(env_id,))
    before = sum(retries_total(control_plane.url, w) for w in WORKFLOWS)

    started = time.monotonic()
    sandbox.github.server.refuse_connections(10)
    sandbox.harbor.server.refuse_connections(10)
    states = run_all([provision(env_id), provision_bulk(bulk_envs), rotate(secret_id)])

    assert all(s.is_completed() for s in states), [s.message for s in states]
    assert time.monotonic() - started >= 10
    for env in (env_id, *bulk_envs):
        check_environment(domain, sandbox, env, True)
    check_secret(domain, sandbox, secret_id, robot, True)
    assert sum(retries_total(control_plane.url, w) for w in WORKFLOWS) - before >= 3
