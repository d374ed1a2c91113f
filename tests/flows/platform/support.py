"""Helpers for whole-flow tests: a threaded control plane, domain builders, Prefect reads."""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from prefect import Flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.client.schemas.objects import Artifact, Log
from prefect.flow_engine import run_flow
from prefect.logging.handlers import APILogHandler
from prefect.states import Scheduled, State
from sqlalchemy import create_engine, text

from blocks.platform.domain import ApplicationStatus
from sandbox.harbor import RobotSpec
from sandbox.run import HARBOR_PROJECT, Sandbox
from sandbox.server import LoopbackServer
from services.platform.control_plane.app import create_app
from services.platform.control_plane.settings import ControlPlaneSettings
from tests.services.platform.control_plane.launchers import RecordingLauncher

T = TypeVar("T")


def run(awaitable: Awaitable[T]) -> T:
    """Run an async flow call (or any awaitable) from a sync test."""

    async def wait() -> T:
        return await awaitable

    return asyncio.run(wait())


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


class ControlPlaneServer:
    """control-plane-api served by uvicorn in a daemon thread on an ephemeral port."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.launcher = RecordingLauncher()
        self.app = create_app(
            ControlPlaneSettings(DATABASE_URL=database_url), launcher=self.launcher
        )
        self.url = ""
        self._server: LoopbackServer | None = None

    def start(self) -> ControlPlaneServer:
        self._server = LoopbackServer(self.app, name="control-plane", lifespan="on").start()
        self.url = self._server.url
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10)

    def reported_run(self, flow_run_id: object) -> dict[str, Any] | None:
        """The outcome a run reported (the control plane keeps it for its metrics)."""
        engine = create_engine(self.database_url)
        try:
            with engine.connect() as connection:
                row = (
                    connection.execute(
                        text("SELECT * FROM workflow_run WHERE flow_run_id = :id"),
                        {"id": str(flow_run_id)},
                    )
                    .mappings()
                    .first()
                )
        finally:
            engine.dispose()
        return dict(row) if row is not None else None


@dataclass
class Domain:
    """Builds domain state in the control plane the way users and earlier runs would."""

    server: ControlPlaneServer
    sandbox: Sandbox

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.server.client() as client:
            response = client.post(path, json=body)
        assert response.status_code < 300, response.text
        return dict(response.json())

    def get(self, path: str) -> dict[str, Any]:
        with self.server.client() as client:
            response = client.get(path)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def application(self, *, onboarded: bool = False, description: str | None = None) -> str:
        app_id = unique("app")
        body = {"name": app_id, "team": "payments"}
        if description is not None:
            body["description"] = description
        self.post("/api/v1/applications", body)
        if onboarded:
            for status in (ApplicationStatus.ONBOARDING, ApplicationStatus.ONBOARDED):
                path = f"/internal/v1/applications/{app_id}/transitions"
                self.post(path, {"status": status.value})
        return app_id

    def environment(self, secrets: tuple[str, ...] = ("db-password", "api-key")) -> str:
        app_id = self.application(onboarded=True)
        path = f"/api/v1/applications/{app_id}/environments"
        return str(self.post(path, {"name": "dev", "secrets": list(secrets)})["id"])

    def secret(
        self,
        environments: tuple[str, ...] = (),
        *,
        robot: str | None = None,
        rotatable: bool = True,
    ) -> tuple[str, str]:
        """A secret backed by a new Harbor robot (unless ``robot`` names one); (id, robot)."""
        secret_id = unique("sec")
        if robot is None:
            robot = unique("robot")
            self.sandbox.harbor.add_robots([RobotSpec(name=robot, project=HARBOR_PROJECT)])
        bindings = [{"environment_id": e, "target": f"k8s:{e}/{secret_id}"} for e in environments]
        self.post(
            "/api/v1/secrets",
            {
                "id": secret_id,
                "provider": "harbor-robot",
                "provider_ref": robot,
                "project": HARBOR_PROJECT,
                "rotatable": rotatable,
                "bindings": bindings,
            },
        )
        return secret_id, robot

    def application_state(self, app_id: str) -> dict[str, Any]:
        return self.get(f"/api/v1/applications/{app_id}")

    def environment_state(self, env_id: str) -> dict[str, Any]:
        return self.get(f"/api/v1/environments/{env_id}")

    def secret_state(self, secret_id: str) -> dict[str, Any]:
        return self.get(f"/api/v1/secrets/{secret_id}")

    def event_names(self, aggregate_id: str) -> list[str]:
        data = self.get(f"/api/v1/events?aggregate_id={aggregate_id}&limit=100")["data"]
        return [e["name"] for e in reversed(data)]  # oldest first

    def events(self, aggregate_id: str) -> list[dict[str, Any]]:
        data = self.get(f"/api/v1/events?aggregate_id={aggregate_id}&limit=100")["data"]
        return list(reversed(data))


def robot_full_name(robot: str) -> str:
    return f"robot${HARBOR_PROJECT}+{robot}"


def robot_secret(sandbox: Sandbox, robot: str) -> str:
    return sandbox.harbor.robot_secret(robot_full_name(robot))


def robot_refreshes(sandbox: Sandbox, robot: str) -> int:
    name = robot_full_name(robot)
    found = [r for r in sandbox.harbor.state()["robots"] if r["name"] == name]
    assert found, name
    return int(found[0]["refreshes"])


def harbor_accepts(sandbox: Sandbox, robot: str, secret: str) -> bool:
    """Whether Harbor authenticates the robot with ``secret`` (401 once it is rotated)."""
    response = httpx.get(
        f"{sandbox.harbor.api_url}/projects/{HARBOR_PROJECT}",
        auth=(robot_full_name(robot), secret),
        headers={"X-Is-Resource-Name": "true"},
        timeout=10,
    )
    return response.status_code != 401


def flow_run_id(state: State[Any]) -> uuid.UUID:
    found = state.state_details.flow_run_id
    assert found is not None
    return found


async def retry_flow_run(flow: Flow[Any, Any], run_id: uuid.UUID) -> State[Any]:
    """Retry a finished flow run in place, as ``prefect flow-run retry --entrypoint`` does
    (same flow-run id: persisted task results of the first attempt are reused)."""
    async with get_client() as client:
        await client.set_flow_run_state(run_id, Scheduled(message="Retried by test"), force=True)
        flow_run = await client.read_flow_run(run_id)
    state: State[Any] = await run_flow(  # type: ignore[misc]
        flow, flow_run=flow_run, parameters=flow_run.parameters, return_type="state"
    )
    return state


async def retry_waits(run_id: uuid.UUID, task_name: str) -> list[float]:
    """Seconds each retry of ``task_name`` was scheduled to wait (its AwaitingRetry states).

    Prefect records task-run states asynchronously, so this polls for a few seconds.
    """
    deadline = time.monotonic() + 10
    async with get_client() as client:
        while True:
            task_runs = await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))
            )
            waits = []
            for task_run in task_runs:
                if task_run.name.startswith(task_name):
                    for state in await client.read_task_run_states(task_run.id):
                        scheduled = state.state_details.scheduled_time
                        if state.name == "AwaitingRetry" and scheduled is not None:
                            waits.append((scheduled - state.timestamp).total_seconds())
            if waits or time.monotonic() > deadline:
                return waits
            await asyncio.sleep(0.2)


async def read_artifacts(run_id: uuid.UUID) -> list[Artifact]:
    async with get_client() as client:
        return await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
        )


async def read_logs(run_ids: list[uuid.UUID]) -> list[Log]:
    await APILogHandler.aflush()
    async with get_client() as client:
        return await client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=run_ids))
        )
