"""What the benchmark does to the running platform: the control-plane API as a user would
use it, the Prefect REST API to start and read runs, and the sandbox to seed robots.

Everything here is plain httpx against the processes ``idp.stack.Stack`` started; nothing
imports Prefect, so it can run before the benchmark points Prefect at the stack.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from blocks.platform.workflows import WORK_POOL
from idp.http import RetryingClient
from idp.stack import Stack

T = TypeVar("T")
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
# Setup writes go through SQLite (control plane and Prefect): more in parallel only adds
# lock contention.
SETUP_CONCURRENCY = 4


class BenchError(RuntimeError):
    pass


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def run_seconds(run: dict[str, Any]) -> float:
    """In-flow wall time of a finished flow run: Running -> final state (server clock)."""
    start, end = parse_time(run.get("start_time")), parse_time(run.get("end_time"))
    if start is None or end is None:
        raise BenchError(f"flow run {run.get('id')} has no start or end time")
    return (end - start).total_seconds()


async def gather_limited(calls: Iterable[Callable[[], Awaitable[T]]], limit: int) -> list[T]:
    """Await every call, at most ``limit`` at once, keeping their order."""
    semaphore = asyncio.Semaphore(limit)

    async def one(call: Callable[[], Awaitable[T]]) -> T:
        async with semaphore:
            return await call()

    return list(await asyncio.gather(*(one(c) for c in calls)))


class Platform:
    """The stack seen from outside: control plane, Prefect and sandbox over HTTP."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.cp = httpx.Client(base_url=stack.control_plane_url, timeout=60)
        self.prefect = RetryingClient(base_url=stack.prefect_api_url, timeout=60)
        env = stack.sandbox_env
        self.sandbox = {
            "github": _root(env["GITHUB_API_URL"]),
            "harbor": _root(env["HARBOR_URL"]),
            "vault": _root(env["VAULT_ADDR"]),
            "endpoints": _root(env["APPENV_SECRETS_ENDPOINT"]),
        }
        self.harbor_auth = (env["HARBOR_ROBOT_USERNAME"], env["HARBOR_ROBOT_PASSWORD"])
        self.harbor_project = env.get("HARBOR_PROJECT", "idp")

    def hosts(self) -> set[str]:
        """``host:port`` of every service a workflow calls (not Prefect)."""
        return {urlsplit(u).netloc for u in [*self.sandbox.values(), self.stack.control_plane_url]}

    # -- control plane -------------------------------------------------------------------
    def command(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.cp.post(f"/api/v1{path}", json=body)
        if response.status_code >= 300:
            raise BenchError(f"POST {path}: {response.status_code} {response.text[:300]}")
        data: dict[str, Any] = response.json()
        return data

    def get(self, path: str) -> dict[str, Any]:
        response = self.cp.get(f"/api/v1{path}")
        if response.status_code != 200:
            raise BenchError(f"GET {path}: {response.status_code} {response.text[:300]}")
        data: dict[str, Any] = response.json()
        return data

    async def _post_many(self, path: str, bodies: Sequence[dict[str, Any]]) -> list[Any]:
        async with httpx.AsyncClient(base_url=self.stack.control_plane_url, timeout=120) as client:

            async def post(body: dict[str, Any]) -> Any:
                # A 503 (Prefect's SQLite locked under load) stored nothing: retry, with an
                # Idempotency-Key so a lost answer cannot create a second run.
                headers = {"Idempotency-Key": str(uuid.uuid4())}
                for attempt in range(6):
                    response = await client.post(path, json=body, headers=headers)
                    if response.status_code != 503:
                        break
                    await asyncio.sleep(0.25 * 2**attempt)
                if response.status_code >= 300:
                    raise BenchError(f"POST {path}: {response.status_code} {response.text[:300]}")
                return response.json()

            return await gather_limited(
                [lambda b=b: post(b) for b in bodies],  # type: ignore[misc]
                SETUP_CONCURRENCY,
            )

    def request_environments(self, application: str, names: Sequence[str]) -> list[str]:
        """Request environments (each command also creates a provisioning run)."""
        path = f"/api/v1/applications/{application}/environments"
        created = asyncio.run(self._post_many(path, [{"name": n} for n in names]))
        return [str(e["id"]) for e in created]

    def register_secrets(self, bodies: Sequence[dict[str, Any]]) -> None:
        asyncio.run(self._post_many("/api/v1/secrets", bodies))

    def environments(self, application: str) -> dict[str, dict[str, Any]]:
        data = self.get(f"/applications/{application}/environments")["data"]
        return {e["id"]: e for e in data}

    def secret(self, secret_id: str) -> dict[str, Any]:
        return self.get(f"/secrets/{secret_id}")

    def metrics(self) -> str:
        return self.cp.get("/metrics").text

    # -- prefect -------------------------------------------------------------------------
    def deployment_id(self, workflow: str) -> str:
        response = self.prefect.get(f"/deployments/name/{workflow}/idp")
        response.raise_for_status()
        return str(response.json()["id"])

    def start_run(self, workflow: str, request: dict[str, Any]) -> str:
        deployment = self.deployment_id(workflow)
        response = self.prefect.post(
            f"/deployments/{deployment}/create_flow_run", json={"parameters": {"request": request}}
        )
        response.raise_for_status()
        return str(response.json()["id"])

    def flow_run(self, run_id: str) -> dict[str, Any]:
        response = self.prefect.get(f"/flow_runs/{run_id}")
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def wait_run(self, run_id: str, timeout: float, poll: float = 0.2) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.flow_run(run_id)
            if (run.get("state") or {}).get("type") in TERMINAL:
                return run
            time.sleep(poll)
        raise BenchError(f"flow run {run_id} did not finish in {timeout:.0f} s")

    def task_runs(
        self, run_id: str, at_least: int = 1, timeout: float = 30
    ) -> list[dict[str, Any]]:
        """Task runs of a flow run, oldest first (Prefect records them asynchronously)."""
        body = {"flow_runs": {"id": {"any_": [run_id]}}, "sort": "EXPECTED_START_TIME_ASC"}
        deadline = time.monotonic() + timeout
        while True:
            found: list[dict[str, Any]] = self.prefect.post("/task_runs/filter", json=body).json()
            started = [t for t in found if t.get("start_time")]
            if len(started) >= at_least or time.monotonic() > deadline:
                return sorted(started, key=lambda t: t["start_time"])
            time.sleep(0.5)

    def table_artifact(self, run_id: str, timeout: float = 30) -> list[dict[str, Any]]:
        body = {"artifacts": {"flow_run_id": {"any_": [run_id]}, "type": {"any_": ["table"]}}}
        deadline = time.monotonic() + timeout
        while True:
            found = self.prefect.post("/artifacts/filter", json=body).json()
            if found or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        if not found:
            raise BenchError(f"flow run {run_id} left no table artifact")
        data = found[0]["data"]
        rows: list[dict[str, Any]] = data if isinstance(data, list) else _json(data)
        return rows

    def pause_pool(self, paused: bool) -> None:
        """A paused work pool hands no run to the worker (runs stay Scheduled)."""
        response = self.prefect.patch(f"/work_pools/{WORK_POOL}", json={"is_paused": paused})
        response.raise_for_status()

    def delete_scheduled_runs(self, workflow: str) -> int:
        """Delete the runs commands created while the pool was paused (benchmark setup)."""
        deployment = self.deployment_id(workflow)
        body = {
            "deployments": {"id": {"any_": [deployment]}},
            "flow_runs": {"state": {"type": {"any_": ["SCHEDULED", "PENDING"]}}},
            "limit": 200,
        }
        deleted = 0
        while True:
            runs = self.prefect.post("/flow_runs/filter", json=body).json()
            if not runs:
                return deleted
            for run in runs:
                self.prefect.delete(f"/flow_runs/{run['id']}")
                deleted += 1

    # -- sandbox -------------------------------------------------------------------------
    def sandbox_state(self, name: str) -> dict[str, Any]:
        data: dict[str, Any] = httpx.get(f"{self.sandbox[name]}/_sandbox/state", timeout=60).json()
        return data

    def create_robots(self, names: Sequence[str]) -> None:
        """Project robots in Harbor, created through its API as an administrator would."""
        project = self.harbor_project

        async def create_all() -> None:
            async with httpx.AsyncClient(
                base_url=f"{self.sandbox['harbor']}/api/v2.0", auth=self.harbor_auth, timeout=60
            ) as client:

                async def create(name: str) -> None:
                    response = await client.post("/robots", json=_robot_body(name, project))
                    if response.status_code != 201:
                        raise BenchError(f"robot {name}: {response.status_code} {response.text}")

                await gather_limited(
                    [lambda n=n: create(n) for n in names],  # type: ignore[misc]
                    SETUP_CONCURRENCY,
                )

        asyncio.run(create_all())


def _robot_body(name: str, project: str) -> dict[str, Any]:
    return {
        "name": name,
        "level": "project",
        "duration": -1,
        "permissions": [
            {
                "kind": "project",
                "namespace": project,
                "access": [{"resource": "repository", "action": "pull"}],
            }
        ],
    }


def _root(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _json(text: str) -> list[dict[str, Any]]:
    import json

    rows: list[dict[str, Any]] = json.loads(text)
    return rows
