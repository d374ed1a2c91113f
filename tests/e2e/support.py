"""The running platform as the end-to-end tests see it: the control-plane API, the Prefect
API and the sandbox's control routes, all over real HTTP to the processes ``Stack``
started. Waits poll with a deadline and fail with the worker's log tail, because
"timed out" alone says nothing about why a run did not finish.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar
from uuid import UUID

import httpx
import pytest
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterId,
)
from prefect.client.schemas.objects import FlowRun, StateType, TaskRun
from prefect.client.schemas.responses import DeploymentResponse

from blocks.platform.workflows import deployment_path
from core.settings import PROJECT_ROOT
from idp.stack import Stack

T = TypeVar("T")
SandboxPart = Literal["github", "harbor", "vault", "endpoints"]
HARBOR_ADMIN = ("admin", "Harbor12345")  # the sandbox's seeded admin (sandbox/harbor.py)
HARBOR_PROJECT = "idp"
DEFAULT_SECRET = "app-config"  # what an environment provisions when it names none
ARTIFACTS = PROJECT_ROOT / "artifacts" / "e2e"
# Files this session wrote under ARTIFACTS, listed at the end of the run.
WRITTEN: list[Path] = []
# Flow-run heartbeats every 30 s (Prefect's minimum; default 180) feed zombie detection;
# a run silent for 30 + 15 s is taken for dead. Tests only: production keeps a grace of
# two heartbeats (see tests/e2e/recovery.py).
HEARTBEAT_SECONDS = 30
ZOMBIE_GRACE_SECONDS = 15
# Under the stack's home: the spans of every platform process (IDP_TRACES_FILE).
TRACES_FILE = "traces.jsonl"
# The first test also pays for starting the platform (~45 s, minutes on a loaded box).
# pytest-timeout's signal method raises inside the test, so fixtures still stop the stack.
SLOW_MACHINE_TIMEOUT = pytest.mark.timeout(600)


def unique(prefix: str) -> str:
    """A fresh slug, so tests sharing one platform never meet each other's data."""
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def wait_until(
    check: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    every: float = 0.3,
    seen: Callable[[], object] | None = None,
) -> T:
    """Poll ``check`` until it returns a value that is not None or False; on timeout the
    error names ``what`` and, when given, what ``seen()`` shows at that moment."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            shown = f"; seen: {seen()!r}" if seen is not None else ""
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{shown}")
        time.sleep(every)


@dataclass(frozen=True)
class Environment:
    """An application onboarded and its environment provisioned, both through the
    control plane, with the runs that did it."""

    application_id: str
    environment_id: str
    onboarding: FlowRun
    provisioning: FlowRun


@dataclass
class Latency:
    what: str
    seconds: float  # command sent -> flow run Running


@dataclass
class Platform:
    stack: Stack
    prefect: SyncPrefectClient
    control_plane: httpx.Client
    latencies: list[Latency] = field(default_factory=list)

    # ---- control plane ---------------------------------------------------------------
    def command(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """A control-plane command that must be accepted (201 or 202). Sent with an
        Idempotency-Key and repeated after a timeout or a 503 (Prefect's SQLite answers
        "database is locked" under load), as a careful client does: the key makes sure a
        repeat never starts a second workflow."""
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        for attempt in range(1, 4):
            try:
                response = self.control_plane.post(path, json=body, headers=headers)
            except httpx.TimeoutException:
                if attempt == 3:
                    raise
                continue
            if response.status_code != 503 or attempt == 3:
                break
            time.sleep(attempt)
        assert response.status_code in (201, 202), f"{path}: {response.status_code} {response.text}"
        return dict(response.json())

    def get(self, path: str) -> dict[str, Any]:
        response = self.control_plane.get(path)
        assert response.status_code == 200, f"{path}: {response.status_code} {response.text}"
        return dict(response.json())

    def event_names(self, aggregate_id: str) -> list[str]:
        data = self.get(f"/api/v1/events?aggregate_id={aggregate_id}&limit=100")["data"]
        return [event["name"] for event in reversed(data)]  # oldest first

    def register_secret(self, robot: str, environments: list[str]) -> str:
        secret_id = unique("sec")
        bindings = [{"environment_id": e, "target": f"k8s:{e}/{secret_id}"} for e in environments]
        self.command(
            "/api/v1/secrets",
            {
                "id": secret_id,
                "provider": "harbor-robot",
                "provider_ref": robot,
                "project": HARBOR_PROJECT,
                "rotation_interval_seconds": 3600,
                "bindings": bindings,
            },
        )
        return secret_id

    # ---- Prefect ---------------------------------------------------------------------
    def deployment(self, workflow: str) -> DeploymentResponse:
        return self.prefect.read_deployment_by_name(deployment_path(workflow))

    def count_runs(self, deployment_id: UUID) -> int:
        by_deployment = DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
        return self.prefect.count_flow_runs(deployment_filter=by_deployment)

    def start_run(self, workflow: str, request: dict[str, Any]) -> FlowRun:
        """Start a deployment through the Prefect API, as an external system would."""
        deployment = self.deployment(workflow)
        return self.prefect.create_flow_run_from_deployment(
            deployment.id, parameters={"request": request}
        )

    def wait_for_run(
        self,
        run_id: UUID | str,
        *,
        requested_at: datetime | None = None,
        timeout: float = 180,
        until: frozenset[StateType] | None = None,
    ) -> FlowRun:
        """Wait until the run is final (or in one of ``until``); note command -> Running
        when ``requested_at`` is set."""

        def reached() -> FlowRun | None:
            run = self.prefect.read_flow_run(UUID(str(run_id)))
            if run.state is None:
                return None
            done = run.state.type in until if until else run.state.is_final()
            return run if done else None

        try:
            run = wait_until(reached, timeout=timeout, what=f"flow run {run_id} to finish")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- worker log ---\n{self.worker_log()}") from None
        if requested_at is not None and run.start_time is not None:
            seconds = run.start_time.timestamp() - requested_at.timestamp()
            self.latencies.append(Latency(run.name, round(seconds, 2)))
        return run

    def assert_completed(self, run: FlowRun) -> None:
        assert run.state_type is StateType.COMPLETED, (
            f"{run.name}: {run.state_type} {run.state.message if run.state else ''}\n"
            f"--- worker log ---\n{self.worker_log()}"
        )

    def task_runs(self, run_id: UUID) -> list[TaskRun]:
        by_run = FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))
        return self.prefect.read_task_runs(flow_run_filter=by_run)

    def state_types(self, run_id: UUID) -> list[StateType]:
        return [state.type for state in self.prefect.read_flow_run_states(run_id)]

    @property
    def traces_file(self) -> Path:
        return self.stack.config.home / TRACES_FILE

    def worker_log(self, lines: int = 40) -> str:
        return self.stack.process("worker").tail(lines)

    # ---- sandbox ---------------------------------------------------------------------
    @property
    def org(self) -> str:
        return self.stack.sandbox_env["GITHUB_ORG"]

    def sandbox_url(self, part: SandboxPart) -> str:
        env = self.stack.sandbox_env
        return {
            "github": env["GITHUB_API_URL"].removesuffix("/api/v3"),
            "harbor": env["HARBOR_URL"],
            "vault": env["VAULT_ADDR"],
            "endpoints": env["APPENV_SECRETS_ENDPOINT"].removesuffix("/appenv/secrets"),
        }[part]

    def sandbox_state(self, part: SandboxPart) -> dict[str, Any]:
        response = httpx.get(f"{self.sandbox_url(part)}/_sandbox/state", timeout=10)
        response.raise_for_status()
        return dict(response.json())

    def add_fault(self, part: SandboxPart, **rule: Any) -> None:
        response = httpx.post(f"{self.sandbox_url(part)}/_sandbox/faults", json=rule, timeout=10)
        assert response.status_code == 201, response.text

    def clear_faults(self, part: SandboxPart) -> None:
        httpx.delete(f"{self.sandbox_url(part)}/_sandbox/faults", timeout=10).raise_for_status()

    def repositories(self, prefix: str) -> dict[str, Any]:
        """Repositories of the sandbox org whose name starts with ``prefix``."""
        repos = self.sandbox_state("github")["repos"]
        return {k: v for k, v in repos.items() if k.startswith(f"{self.org}/{prefix}")}

    def vault_keys(self) -> dict[str, Any]:
        return dict(self.sandbox_state("vault")["mounts"]["secret"])

    def bindings(self, environment_id: str) -> list[dict[str, Any]]:
        found = self.sandbox_state("endpoints")["bindings"]
        return [b for b in found if b["environment_id"] == environment_id]

    def create_robot(self, name: str) -> str:
        """A project robot in the Harbor sandbox, created as Harbor's admin; its secret."""
        body = {
            "name": name,
            "level": "project",
            "duration": -1,
            "permissions": [
                {
                    "kind": "project",
                    "namespace": HARBOR_PROJECT,
                    "access": [{"resource": "repository", "action": "pull"}],
                }
            ],
        }
        url = f"{self.sandbox_url('harbor')}/api/v2.0/robots"
        response = httpx.post(url, json=body, auth=HARBOR_ADMIN, timeout=10)
        assert response.status_code == 201, response.text
        return str(response.json()["secret"])

    def robot_refreshes(self, name: str) -> int:
        full = f"robot${HARBOR_PROJECT}+{name}"
        robots = [r for r in self.sandbox_state("harbor")["robots"] if r["name"] == full]
        assert robots, full
        return int(robots[0]["refreshes"])

    def harbor_accepts(self, robot: str, secret: str) -> bool:
        """Whether Harbor still authenticates the robot with ``secret``."""
        response = httpx.get(
            f"{self.sandbox_url('harbor')}/api/v2.0/projects/{HARBOR_PROJECT}",
            auth=(f"robot${HARBOR_PROJECT}+{robot}", secret),
            headers={"X-Is-Resource-Name": "true"},
            timeout=10,
        )
        return response.status_code != 401


def assert_environment_materialized(
    platform: Platform, env_id: str, secrets: tuple[str, ...] = (DEFAULT_SECRET,)
) -> None:
    """Exactly one repository with one protection rule, each secret written once (one
    version), one binding per secret: what provisioning leaves however often it ran."""
    full_name = f"{platform.org}/appenv-{env_id}"
    repos = platform.repositories(f"appenv-{env_id}")
    assert list(repos) == [full_name]
    repo = repos[full_name]
    assert repo["private"] is True
    assert list(repo["protections"]) == ["main"]
    reviews = repo["protections"]["main"]["required_pull_request_reviews"]
    assert reviews["required_approving_review_count"] == 1
    vault = platform.vault_keys()
    for name in secrets:
        assert vault[f"idp/appenv/{env_id}/{name}"] == {"current_version": 1, "versions": 1}
    found = platform.bindings(env_id)
    bound = sorted((b["secret_id"], b["target"]) for b in found if b["secret_id"] in secrets)
    assert bound == sorted((name, f"k8s:{env_id}/{name}") for name in secrets)


def now() -> datetime:
    return datetime.now(UTC)
