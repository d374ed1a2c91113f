"""Helpers of the fault-injection suite: a control plane that can be restarted on its port,
concurrent flow runs, and the invariants every run must leave behind whatever failed."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx
from prefect.states import State

from blocks.platform.domain import appenv_repository_name
from blocks.platform.workflows import (
    ApplicationEnvironmentProvisioningRequest,
    BulkEnvironmentProvisioningRequest,
    SecretRotationRequest,
    SecretRotationSweepRequest,
)
from flows.platform.bulk_environment_provisioning import bulk_environment_provisioning
from flows.platform.environment_provisioning import application_environment_provisioning
from flows.platform.secret_rotation import secret_rotation
from flows.platform.secret_rotation_sweep import secret_rotation_sweep
from sandbox.run import DEFAULT_GITHUB_ORG, Sandbox
from sandbox.server import LoopbackServer
from services.platform.control_plane.app import create_app
from services.platform.control_plane.settings import ControlPlaneSettings
from tests.flows.platform.support import ControlPlaneServer, Domain, harbor_accepts

DOMAIN_CODE = re.compile(r"\[([a-z_]+)\]")


class RestartableControlPlane(ControlPlaneServer):
    """control-plane-api on a fixed loopback port; ``restart`` stops the process's app and
    serves a brand-new one (fresh metrics, fresh connections) on the same port and database,
    as a redeploy of the service would."""

    def start(self) -> RestartableControlPlane:
        port = self._server.port if self._server is not None else 0
        self._server = LoopbackServer(self.app, name="control-plane", port=port, lifespan="on")
        self._server.start()
        self.url = self._server.url
        return self

    def restart(self, down_seconds: float = 0.0) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.app = create_app(
            ControlPlaneSettings(DATABASE_URL=self.database_url), launcher=self.launcher
        )
        self.start()

    def restart_when(
        self, condition: Callable[[], bool], down_seconds: float, timeout: float = 60
    ) -> threading.Thread:
        """Restart from a background thread as soon as ``condition()`` holds (mid-run)."""

        def watch() -> None:
            deadline = time.monotonic() + timeout
            while not condition() and time.monotonic() < deadline:
                time.sleep(0.02)
            self.restart(down_seconds)

        thread = threading.Thread(target=watch, name="restart-control-plane", daemon=True)
        thread.start()
        return thread


FlowCall = Callable[[], Awaitable[State[Any]]]


def provision(env_id: str) -> FlowCall:
    request = ApplicationEnvironmentProvisioningRequest(environment_id=env_id)
    return lambda: application_environment_provisioning(request=request, return_state=True)


def provision_bulk(env_ids: Sequence[str], max_concurrency: int = 3) -> FlowCall:
    request = BulkEnvironmentProvisioningRequest(
        environment_ids=list(env_ids), max_concurrency=max_concurrency
    )
    return lambda: bulk_environment_provisioning(request=request, return_state=True)


def rotate(secret_id: str) -> FlowCall:
    request = SecretRotationRequest(secret_id=secret_id)
    return lambda: secret_rotation(request=request, return_state=True)


def sweep(max_concurrency: int = 5) -> FlowCall:
    request = SecretRotationSweepRequest(max_concurrency=max_concurrency)
    return lambda: secret_rotation_sweep(request=request, return_state=True)


def environments(domain: Domain, count: int) -> list[str]:
    """``count`` requested environments of one onboarded application."""
    app_id = domain.application(onboarded=True)
    path = f"/api/v1/applications/{app_id}/environments"
    return [str(domain.post(path, {"name": f"e{i}"})["id"]) for i in range(count)]


def run_all(calls: Sequence[FlowCall]) -> list[State[Any]]:
    """Run async flow calls concurrently in one event loop; their final states."""

    async def gather() -> list[State[Any]]:
        return list(await asyncio.gather(*(call() for call in calls)))

    return asyncio.run(gather())


def retries_total(control_plane_url: str, workflow: str) -> float:
    """``workflow_retries_total{workflow=...}`` from the control plane's /metrics."""
    text = httpx.get(f"{control_plane_url}/metrics", timeout=10).text
    pattern = re.compile(rf'^workflow_retries_total\{{workflow="{workflow}"\}} ([0-9.e+]+)$', re.M)
    found = pattern.search(text)
    return float(found.group(1)) if found else 0.0


def state_code(state: State[Any]) -> str | None:
    """The domain code a failed run names in its state message (``[upstream_unavailable]``)."""
    found = DOMAIN_CODE.search(str(state.message or ""))
    return found.group(1) if found else None


def check_environment(domain: Domain, sandbox: Sandbox, env_id: str, completed: bool) -> None:
    """What a provisioning run must leave: provisioned with exactly one repository,
    protection and binding per secret, or failed with a domain code and marked failed."""
    env = domain.environment_state(env_id)
    events = domain.events(env_id)
    assert env["status"] not in {"requested", "provisioning"}, (env_id, env["status"])
    if not completed:
        assert env["status"] == "provisioning_failed", (env_id, env["status"])
        failure = events[-1]
        assert failure["name"] == "workflow_appenv_provisioning_failed"
        assert failure["payload"]["error_code"] != "internal_error"
        return
    assert env["status"] == "provisioned", (env_id, env["status"])
    repos = sandbox.github.state()["repos"]
    full_name = f"{DEFAULT_GITHUB_ORG}/{appenv_repository_name(env_id)}"
    assert [name for name in repos if name == full_name] == [full_name]
    rule = repos[full_name]["protections"][repos[full_name]["default_branch"]]
    assert rule["required_pull_request_reviews"]["required_approving_review_count"] >= 1
    bindings = [
        b
        for b in sandbox.endpoints.state()["bindings"]
        if b["environment_id"] == env_id and b["secret_id"] in env["secrets"]
    ]
    assert sorted(b["secret_id"] for b in bindings) == sorted(env["secrets"]), bindings
    completed_events = [e for e in events if e["name"] == "workflow_appenv_provisioning_completed"]
    assert len(completed_events) == 1, (env_id, [e["name"] for e in events])


def check_secret(domain: Domain, sandbox: Sandbox, secret_id: str, robot: str, done: bool) -> None:
    """What a rotation must leave: active with the value Harbor accepts stored, or a
    truthful failed status with a domain code; never rotating, never locked."""
    secret = domain.secret_state(secret_id)
    assert secret["lock_holder"] is None, (secret_id, secret["lock_holder"])
    assert secret["status"] != "rotating", secret_id
    last = domain.events(secret_id)[-1]
    if not done:
        assert secret["status"] in {"rotation_failed", "rotated_pending_bindings"}, secret
        assert last["name"] == "workflow_secret_rotation_failed"
        assert last["payload"]["error_code"] != "internal_error"
        return
    assert secret["status"] == "active", secret
    assert last["name"] == "workflow_secret_rotation_completed"
    from blocks.vault import VaultSecretBackend

    value = VaultSecretBackend.from_env().read_secret_value(secret_id).get_secret_value()
    assert harbor_accepts(sandbox, robot, value), f"{secret_id}: the stored value is not Harbor's"
