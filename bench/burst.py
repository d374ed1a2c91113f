"""A burst of commands: N environment requests at once, each its own flow run.

This is what a platform team does when it files many requests together: N ``POST
/api/v1/applications/{app}/environments`` through the control-plane API, at most C in
flight, each creating one ApplicationEnvironmentProvisioning run of the deployment. The
burst is over when every run is terminal. Meanwhile a prober asks Prefect's
``/api/health`` every 0.25 s: a server that stalls (SQLite's ``database is locked``, an
event loop starved by its own services) shows there before anything else. Afterwards
the server's log is searched for lock errors and dead-lettered event messages.

Used by ``make bench`` (the burst case) and by ``tests/e2e/test_burst.py`` (a smaller one).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.report import percentile
from idp.http import RetryingClient
from idp.stack import Stack

TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
HEALTH_EVERY_SECONDS = 0.25
HEALTH_TIMEOUT_SECONDS = 10.0
LOCK_ERROR = "database is locked"
DEAD_LETTER = "dead letter"


@dataclass
class HealthProbe:
    """Latencies of ``GET /api/health`` while the burst runs (a timeout counts in full)."""

    url: str
    latencies: list[float] = field(default_factory=list)
    unanswered: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(timeout=HEALTH_TIMEOUT_SECONDS) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    ok = client.get(self.url).status_code == 200
                except httpx.HTTPError:
                    ok = False
                self.latencies.append(time.monotonic() - started)
                self.unanswered += not ok
                self._stop.wait(HEALTH_EVERY_SECONDS)

    def __enter__(self) -> HealthProbe:
        self._thread = threading.Thread(target=self.run, name="health-probe", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=HEALTH_TIMEOUT_SECONDS + 5)


@dataclass
class BurstResult:
    count: int
    concurrency: int
    states: dict[str, int]  # final state name -> runs
    seconds: float  # first command sent -> every run terminal
    commands_seconds: float  # first command sent -> last command answered
    health_p50: float
    health_max: float
    health_over_1s: int
    health_unanswered: int
    health_samples: int
    lock_errors: int  # in the Prefect server's log, during the burst
    dead_lettered: int

    @property
    def completed(self) -> int:
        return self.states.get("Completed", 0)

    @property
    def workflows_per_second(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        return (
            f"{self.completed}/{self.count} completed in {self.seconds:.1f} s "
            f"({self.workflows_per_second:.2f}/s; commands answered in "
            f"{self.commands_seconds:.1f} s); /api/health p50 {self.health_p50 * 1000:.0f} ms, "
            f"max {self.health_max * 1000:.0f} ms, {self.health_over_1s} over 1 s, "
            f"{self.health_unanswered} unanswered; {self.lock_errors} lock errors, "
            f"{self.dead_lettered} dead-lettered"
        )


def _log_counts(stack: Stack, offset: int) -> tuple[int, int]:
    text = (stack.logs / "prefect-server.log").read_bytes()[offset:].decode(errors="replace")
    return text.count(LOCK_ERROR), text.lower().count(DEAD_LETTER)


async def _request_all(
    control_plane_url: str, application: str, names: list[str], concurrency: int
) -> list[str]:
    """Send every command, at most ``concurrency`` at once; the flow-run ids."""
    semaphore = asyncio.Semaphore(concurrency)
    path = f"/api/v1/applications/{application}/environments"
    async with httpx.AsyncClient(base_url=control_plane_url, timeout=120) as client:

        async def one(name: str) -> str:
            # An Idempotency-Key makes a repeat after a 503 or a lost answer harmless.
            headers = {"Idempotency-Key": f"burst-{uuid.uuid4()}"}
            async with semaphore:
                for attempt in range(6):
                    response = await client.post(path, json={"name": name}, headers=headers)
                    if response.status_code not in (429, 503):
                        break
                    await asyncio.sleep(0.25 * 2**attempt)
            if response.status_code != 201:
                raise RuntimeError(f"POST {path} {name}: {response.status_code} {response.text}")
            return str(response.json()["last_flow_run_id"])

        return list(await asyncio.gather(*(one(n) for n in names)))


def onboard(stack: Stack, application: str, timeout: float = 300) -> None:
    """Register ``application`` and wait until it is onboarded."""
    with RetryingClient(base_url=stack.control_plane_url, timeout=60) as client:
        response = client.post(
            "/api/v1/applications",
            json={"name": application, "team": "burst"},
            headers={"Idempotency-Key": f"burst-app-{application}"},
        )
        if response.status_code != 201:
            raise RuntimeError(f"onboarding {application}: {response.status_code} {response.text}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = client.get(f"/api/v1/applications/{application}").json()["status"]
            if status == "onboarded":
                return
            if status == "onboarding_failed":
                raise RuntimeError(f"onboarding {application} failed")
            time.sleep(0.5)
    raise RuntimeError(f"{application} not onboarded after {timeout:.0f} s")


def _final_states(prefect: httpx.Client, run_ids: list[str]) -> dict[str, dict[str, Any]]:
    states: dict[str, dict[str, Any]] = {}
    for start in range(0, len(run_ids), 200):
        chunk = run_ids[start : start + 200]
        body = {"flow_runs": {"id": {"any_": chunk}}, "limit": len(chunk)}
        response = prefect.post("/flow_runs/filter", json=body)
        response.raise_for_status()
        for run in response.json():
            states[str(run["id"])] = run.get("state") or {}
    return states


def run_burst(
    stack: Stack,
    count: int,
    concurrency: int,
    *,
    application: str | None = None,
    timeout: float = 1800,
) -> BurstResult:
    """``count`` environment requests for a freshly onboarded application, at most
    ``concurrency`` in flight; waits until every run is terminal (or ``timeout``)."""
    application = application or f"burst-{uuid.uuid4().hex[:6]}"
    onboard(stack, application)
    names = [f"e{i:04d}" for i in range(count)]
    log_offset = (stack.logs / "prefect-server.log").stat().st_size
    with (
        HealthProbe(f"{stack.prefect_api_url}/health") as health,
        RetryingClient(base_url=stack.prefect_api_url, timeout=60) as prefect,
    ):
        started = time.monotonic()
        run_ids = asyncio.run(
            _request_all(stack.control_plane_url, application, names, concurrency)
        )
        commands_seconds = time.monotonic() - started
        deadline = started + timeout
        states: dict[str, dict[str, Any]] = {}
        while True:
            # A stalled server: keep the last answer and ask again.
            with contextlib.suppress(httpx.HTTPError):
                states = _final_states(prefect, run_ids)
            if all(s.get("type") in TERMINAL for s in states.values()) and len(states) == count:
                break
            if time.monotonic() > deadline:
                break
            time.sleep(0.5)
        seconds = time.monotonic() - started
    lock_errors, dead_lettered = _log_counts(stack, log_offset)
    by_name: dict[str, int] = {}
    for run_id in run_ids:
        state = states.get(run_id, {})
        name = (
            str(state.get("name") or "missing") if state.get("type") in TERMINAL else "unfinished"
        )
        by_name[name] = by_name.get(name, 0) + 1
    latencies = health.latencies or [float("nan")]
    return BurstResult(
        count=count,
        concurrency=concurrency,
        states=by_name,
        seconds=seconds,
        commands_seconds=commands_seconds,
        health_p50=percentile(latencies, 50),
        health_max=max(latencies),
        health_over_1s=sum(1 for value in latencies if value > 1.0),
        health_unanswered=health.unanswered,
        health_samples=len(health.latencies),
        lock_errors=lock_errors,
        dead_lettered=dead_lettered,
    )
