"""A provisioning cancelled in the middle (here: waiting on the GitOps check) undoes what it
had created: the worker ends the run's process, Prefect runs the flow's cancellation hook,
and the hook compensates from the control plane's log (bindings, secrets, repository) and
marks the environment ``provisioning_failed``. The undo actions are in the log, settled.
"""

from __future__ import annotations

import pytest
from prefect.client.schemas.objects import StateType
from prefect.states import Cancelling

from blocks.platform.domain import appenv_repository_name
from tests.e2e.support import SLOW_MACHINE_TIMEOUT, Environment, Platform, unique, wait_until

pytestmark = [pytest.mark.e2e, SLOW_MACHINE_TIMEOUT]


def test_a_cancelled_provisioning_removes_what_it_created(
    platform: Platform, environment: Environment
) -> None:
    app_id = environment.application_id
    # The GitOps check takes a minute: the run waits there, its repository, secrets and
    # bindings already in place, until it is cancelled.
    platform.add_fault("endpoints", path="/appenv/gitops-verify", latency_ms=60_000)
    try:
        path = f"/api/v1/applications/{app_id}/environments"
        env = platform.command(path, {"name": unique("qa")})
        env_id, run_id = env["id"], env["last_flow_run_id"]
        repo = appenv_repository_name(env_id)
        wait_until(
            lambda: bool(platform.bindings(env_id) and platform.repositories(repo)),
            timeout=180,
            every=0.25,
            what="the run to create its repository and bindings",
        )
        platform.prefect.set_flow_run_state(run_id, Cancelling())  # the UI's "Cancel"
        ended = platform.wait_for_run(run_id, timeout=120)
    finally:
        platform.clear_faults("endpoints")

    assert ended.state_type is StateType.CANCELLED, platform.worker_log()
    wait_until(
        lambda: platform.get(f"/api/v1/environments/{env_id}")["status"] == "provisioning_failed",
        timeout=60,
        what="the cancellation hook to mark the environment failed",
        seen=lambda: platform.worker_log(80),
    )
    assert platform.repositories(repo) == {}
    assert platform.bindings(env_id) == []
    assert [k for k in platform.vault_keys() if f"/appenv/{env_id}/" in k] == []
    log = platform.control_plane.get(f"/internal/v1/workflow-runs/{run_id}/compensations")
    entries = log.json()["data"]
    assert [(e["undo"], e["done"]) for e in entries] == [
        ("DeleteRepository", True),
        ("DeleteSecrets", True),
        ("DeleteSecretBindings", True),
    ]
