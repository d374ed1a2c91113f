"""Case 3: a rotation sweep of S secrets at concurrency C, against its asyncio bound.

Each secret is backed by its own Harbor robot (created through Harbor's API) and bound to
one environment, so a rotation makes every call a real one does: lock, mark rotating,
event, find the robot, refresh its secret, store it in Vault, update the binding, record
the rotation, unlock, event. The sweep runs as a flow run of ``SecretRotationSweep/idp``
on the worker; the bound replays one recorded rotation per secret (plus the one "which
secrets are due" call) on a second set of secrets registered after the sweep.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import httpx

from bench.lowerbound import run_replay
from bench.platform import BenchError, Platform, gather_limited, run_seconds
from bench.report import Report, Row, percentile
from bench.trace import Template
from blocks.platform.domain import WORKFLOW_SECRET_ROTATION_SWEEP

ROTATION_INTERVAL = 86_400


def register(platform: Platform, pairs: Sequence[tuple[str, str]], environment_id: str) -> None:
    """Robots in Harbor, then one secret per robot in the control plane, bound once."""
    platform.create_robots([robot for _, robot in pairs])
    platform.register_secrets(
        [
            {
                "id": secret,
                "provider": "harbor-robot",
                "provider_ref": robot,
                "project": platform.harbor_project,
                "rotatable": True,
                "rotation_interval_seconds": ROTATION_INTERVAL,
                "bindings": [
                    {"environment_id": environment_id, "target": f"k8s:{environment_id}/{secret}"}
                ],
            }
            for secret, robot in pairs
        ]
    )


def pairs(prefix: str, count: int) -> list[tuple[str, str]]:
    return [(f"bs{prefix}-{i:05d}", f"br{prefix}-{i:05d}") for i in range(count)]


def sweep(platform: Platform, size: int, concurrency: int) -> tuple[float, float, list[Any]]:
    submitted = time.monotonic()
    run_id = platform.start_run(
        WORKFLOW_SECRET_ROTATION_SWEEP, {"max_concurrency": concurrency, "limit": size}
    )
    run = platform.wait_run(run_id, timeout=3600, poll=0.5)
    total = time.monotonic() - submitted
    if run["state"]["type"] != "COMPLETED":
        raise BenchError(f"sweep {run_id} ended {run['state']['name']}")
    return run_seconds(run), total, platform.table_artifact(run_id)


def check_rotated(platform: Platform, secret_ids: Sequence[str]) -> dict[str, int]:
    """Every secret active, its new value stored (version >= 1) and the lock released."""

    async def read_all() -> list[dict[str, Any]]:
        async with httpx.AsyncClient(base_url=platform.stack.control_plane_url, timeout=60) as c:

            async def read(secret_id: str) -> dict[str, Any]:
                data: dict[str, Any] = (await c.get(f"/api/v1/secrets/{secret_id}")).json()
                return data

            return await gather_limited([lambda s=s: read(s) for s in secret_ids], 8)  # type: ignore[misc]

    problems = {"not_active": 0, "not_stored": 0, "still_locked": 0}
    for secret in asyncio.run(read_all()):
        problems["not_active"] += secret.get("status") != "active"
        problems["not_stored"] += not (secret.get("stored") or {}).get("version")
        problems["still_locked"] += secret.get("lock_holder") is not None
    return problems


def case_sweep(
    report: Report,
    platform: Platform,
    template: Template,
    calibration: tuple[str, str],
    sweep_pairs: Sequence[tuple[str, str]],
    bound_pairs: Sequence[tuple[str, str]],
    environment_id: str,
    concurrency: int,
) -> None:
    """Run the sweep on ``sweep_pairs`` (due now), then the bound on ``bound_pairs``."""
    size = len(sweep_pairs)
    label = f"3 rotation sweep {size} @ {concurrency}"
    in_flow, total, items = sweep(platform, size, concurrency)
    swept = {i["secret_id"]: i for i in items}
    expected = {s for s, _ in sweep_pairs}
    rotated = [i for i in items if i["outcome"] == "rotated"]
    problems = check_rotated(platform, sorted(expected))

    register(platform, bound_pairs, environment_id)
    cal_secret, cal_robot = calibration
    due = f"{platform.stack.control_plane_url}/internal/v1/rotations/due?limit={size}"
    bound = run_replay(
        template,
        [{cal_secret: s, cal_robot: r} for s, r in bound_pairs],
        concurrency,
        before=[("GET", due, {})],
    )
    if bound.failures:
        raise BenchError(f"{label}: the lower bound failed: {bound.failures[:3]}")
    bound_problems = check_rotated(platform, [s for s, _ in bound_pairs])

    complete = set(swept) == expected and not any(problems.values())
    throughput = len(rotated) / in_flow
    ratio = throughput / bound.throughput
    report.add(
        Row(
            label,
            "secrets/s (in-flow)",
            throughput,
            bound.throughput,
            ratio,
            "value / asyncio bound",
            ">= 0.5, all recorded",
            ratio >= 0.5 and complete,
            f"{len(rotated)}/{size} rotated; submit->done {total:.1f} s",
        )
    )
    report.details["case3"] = {
        "in_flow_seconds": in_flow,
        "submit_to_done_seconds": total,
        "items_recorded": len(swept),
        "rotated": len(rotated),
        "retries": sum(int(i.get("retries") or 0) for i in items),
        "problems": problems,
        "bound_seconds": bound.seconds,
        "bound_requests": bound.requests,
        "bound_p50_seconds": percentile(bound.durations, 50),
        "bound_problems": bound_problems,
        "calls_per_secret": template.count_by_host(),
    }
