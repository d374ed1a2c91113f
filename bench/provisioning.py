"""Cases 1 and 2: one ApplicationEnvironmentProvisioning run, and bulk provisioning.

Case 1 goes the production way: a control-plane command creates the flow run, the worker
starts a process for it. Measured: the in-flow wall time (flow run Running -> Completed,
Prefect's timestamps) against the critical path of six provider calls, and the time from
the command to the flow's first step running (the first task run's start).

Case 2 provisions N environments at concurrency C with BulkEnvironmentProvisioning (one
flow run through the worker; see ``flows/platform/bulk_environment_provisioning.py`` for why not N
runs), and the same N environments' HTTP calls with plain asyncio + httpx. Both work on
environments requested through the control plane while the work pool was paused (the
runs those commands created are deleted), so each side starts from the same state.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from bench.lowerbound import ReplayResult, run_replay
from bench.platform import BenchError, Platform, parse_time, run_seconds
from bench.report import Report, Row, percentile
from bench.trace import Template
from blocks.platform.domain import (
    WORKFLOW_APPENV_PROVISIONING,
    WORKFLOW_BULK_APPENV_PROVISIONING,
    appenv_repository_name,
)

CRITICAL_PATH_STEPS = 6  # MaterializeRepositories .. VerifyGitOpsReconciliation (+ protection)


def single_runs(platform: Platform, application: str, runs: int) -> list[dict[str, float]]:
    """Request ``runs`` environments one after the other; time each run (case 1)."""
    measured = []
    for i in range(runs):
        sent = datetime.now(UTC)
        env = platform.command(f"/applications/{application}/environments", {"name": f"lat{i}"})
        run_id = str(env["last_flow_run_id"])
        run = platform.wait_run(run_id, timeout=180)
        if run["state"]["type"] != "COMPLETED":
            raise BenchError(f"case 1 run {run_id} ended {run['state']['name']}")
        first = platform.task_runs(run_id, at_least=8)[0]
        first_start = parse_time(first["start_time"])
        flow_start = parse_time(run["start_time"])
        assert first_start is not None and flow_start is not None
        measured.append(
            {
                "in_flow_seconds": run_seconds(run),
                "command_to_first_step_seconds": (first_start - sent).total_seconds(),
                "command_to_flow_running_seconds": (flow_start - sent).total_seconds(),
            }
        )
        figures = ", ".join(f"{k} {v:.3f}" for k, v in measured[-1].items())
        print(f"  case 1 run {i + 1}/{runs}: {figures}", flush=True)
    return measured


def report_single(
    report: Report,
    measured: list[dict[str, float]],
    latency_ms: float,
    bound: ReplayResult,
    template: Template,
) -> None:
    in_flow = statistics.median(m["in_flow_seconds"] for m in measured)
    critical = CRITICAL_PATH_STEPS * latency_ms / 1000
    report.add(
        Row(
            "1 provisioning, in-flow wall time",
            "p50 seconds",
            in_flow,
            critical,
            in_flow / critical if critical else None,
            "value / (6 x latency)",
            "<= 1.5",
            in_flow <= 1.5 * critical,
            f"{len(measured)} runs",
        )
    )
    replayed = statistics.median(bound.durations) if bound.durations else float("nan")
    report.add(
        Row(
            "1 provisioning, its calls replayed",
            "p50 seconds",
            in_flow,
            replayed,
            in_flow / replayed,
            "value / asyncio replay",
            "(info)",
            None,
            f"{len(template.calls)} HTTP calls per environment",
        )
    )
    to_step = statistics.median(m["command_to_first_step_seconds"] for m in measured)
    report.add(
        Row(
            "1 command -> first step running",
            "p50 seconds",
            to_step,
            None,
            None,
            "",
            "(info)",
            None,
            f"max {max(m['command_to_first_step_seconds'] for m in measured):.2f} s",
        )
    )
    report.details["case1"] = {
        "runs": measured,
        "critical_path_seconds": critical,
        "replay_seconds": bound.durations,
        "calls_per_environment": template.count_by_host(),
    }


def bulk(
    platform: Platform, environment_ids: Sequence[str], concurrency: int
) -> tuple[float, float, list[dict[str, Any]]]:
    """Provision with the bulk flow; (in-flow seconds, submit-to-done seconds, items)."""
    submitted = time.monotonic()
    run_id = platform.start_run(
        WORKFLOW_BULK_APPENV_PROVISIONING,
        {"environment_ids": list(environment_ids), "max_concurrency": concurrency},
    )
    run = platform.wait_run(run_id, timeout=1800, poll=0.5)
    total = time.monotonic() - submitted
    if run["state"]["type"] != "COMPLETED":
        raise BenchError(f"bulk run {run_id} ended {run['state']['name']}: {run['state']}")
    return run_seconds(run), total, platform.table_artifact(run_id)


def check_provisioned(
    platform: Platform, application: str, environment_ids: Sequence[str]
) -> dict[str, int]:
    """Domain and sandbox state after provisioning: what is missing or doubled."""
    envs = platform.environments(application)
    repos = platform.sandbox_state("github")["repos"]
    bindings = platform.sandbox_state("endpoints")["bindings"]
    per_env: dict[str, int] = {}
    for binding in bindings:
        per_env[binding["environment_id"]] = per_env.get(binding["environment_id"], 0) + 1
    org = platform.stack.sandbox_env.get("GITHUB_ORG", "acme")
    problems = {"not_provisioned": 0, "no_repository": 0, "no_protection": 0, "bindings_not_1": 0}
    for env_id in environment_ids:
        if envs.get(env_id, {}).get("status") != "provisioned":
            problems["not_provisioned"] += 1
        repo = repos.get(f"{org}/{appenv_repository_name(env_id)}")
        if repo is None:
            problems["no_repository"] += 1
        elif not repo.get("protections", {}).get(repo.get("default_branch", "main")):
            problems["no_protection"] += 1
        if per_env.get(env_id, 0) != 1:
            problems["bindings_not_1"] += 1
    return problems


def case_bulk(
    report: Report,
    platform: Platform,
    application: str,
    template: Template,
    calibration_env: str,
    size: int,
    concurrency: int,
    bulk_ids: Sequence[str],
    bound_ids: Sequence[str],
) -> None:
    """Case 2 for one size: the lower bound first (on its own environments), then the flow."""
    label = f"2 provision {size} @ {concurrency}"
    bound = run_replay(template, [{calibration_env: e} for e in bound_ids], concurrency)
    if bound.failures:
        raise BenchError(f"{label}: the lower bound failed: {bound.failures[:3]}")
    in_flow, total, items = bulk(platform, bulk_ids, concurrency)
    recorded = {i["environment_id"]: i for i in items}
    provisioned = [i for i in items if i["outcome"] == "provisioned"]
    problems = check_provisioned(platform, application, bulk_ids)
    bound_problems = check_provisioned(platform, application, bound_ids)
    complete = set(recorded) == set(bulk_ids) and not any(problems.values())
    throughput = len(provisioned) / in_flow
    ratio = throughput / bound.throughput
    report.add(
        Row(
            label,
            "environments/s (in-flow)",
            throughput,
            bound.throughput,
            ratio,
            "value / asyncio bound",
            ">= 0.5, all recorded",
            ratio >= 0.5 and complete,
            f"{len(provisioned)}/{size} provisioned; submit->done {total:.1f} s",
        )
    )
    durations = [float(i["duration_seconds"]) for i in provisioned]
    for q in (50, 95):
        mine, theirs = percentile(durations, q), percentile(bound.durations, q)
        report.add(
            Row(
                label,
                f"p{q} s per environment",
                mine,
                theirs,
                mine / theirs,
                "value / asyncio bound",
                "(info)",
                None,
            )
        )
    report.details[f"case2_{size}_{concurrency}"] = {
        "in_flow_seconds": in_flow,
        "submit_to_done_seconds": total,
        "items_recorded": len(recorded),
        "provisioned": len(provisioned),
        "retries": sum(int(i.get("retries") or 0) for i in items),
        "problems": problems,
        "bound_seconds": bound.seconds,
        "bound_requests": bound.requests,
        "bound_problems": bound_problems,
    }


def request_environments(
    platform: Platform, application: str, prefix: str, count: int
) -> list[str]:
    """``count`` environments named ``<prefix>NNNN`` (pool paused: their runs are deleted)."""
    names = [f"{prefix}{i:04d}" for i in range(count)]
    return platform.request_environments(application, names)


def delete_runs(platform: Platform) -> int:
    return platform.delete_scheduled_runs(WORKFLOW_APPENV_PROVISIONING)
