"""The order of a benchmark run, on a started stack.

Setup needs environments in ``requested`` state without their provisioning runs
executing: the work pool is paused while the control plane requests them (each command
creates a run, as in production), those runs are deleted, then the pool is resumed.
Each case's lower bound works on a second, identical set, so flow and bound start from
the same state; the bound runs first, so any slowdown from a fuller sandbox or database
counts against the flow, not for it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from bench import calibrate
from bench.burst import run_burst
from bench.lowerbound import run_replay
from bench.memory import MemorySampler
from bench.platform import BenchError, Platform
from bench.provisioning import (
    case_bulk,
    delete_runs,
    report_single,
    request_environments,
    single_runs,
)
from bench.report import Report, Row
from bench.rotation import case_sweep, pairs, register
from idp.stack import Stack

GIB = 1024**3
CALIBRATION_ENV = "cal"


def _phase(sampler: MemorySampler, name: str) -> None:
    sampler.phase = name
    print(f"\n== {name} ==", flush=True)


def run_cases(
    stack: Stack,
    report: Report,
    env_sizes: Sequence[tuple[int, int]],
    sweep: tuple[int, int],
    runs: int,
) -> None:
    platform = Platform(stack)
    app = "bench"
    with MemorySampler(lambda: stack.process("worker").popen.pid) as sampler:
        _phase(sampler, "setup: onboard the application")
        onboarding = platform.command("/applications", {"name": app, "team": "bench"})
        run = platform.wait_run(str(onboarding["last_flow_run_id"]), timeout=180)
        if run["state"]["type"] != "COMPLETED":
            raise BenchError(f"onboarding ended {run['state']['name']}")

        _phase(sampler, "case 1: single provisioning runs")
        measured = single_runs(platform, app, runs)

        _phase(sampler, "setup: request environments (pool paused)")
        started = time.monotonic()
        platform.pause_pool(True)
        try:
            cal_env = request_environments(platform, app, CALIBRATION_ENV, 1)[0]
            single = request_environments(platform, app, "one", 3)
            deleted = delete_runs(platform)
            sets = {}
            for size, concurrency in env_sizes:
                # Delete as we go: Prefect's late-run service rewrites waiting runs' states.
                made = request_environments(platform, app, f"b{size}x{concurrency}-", size)
                deleted += delete_runs(platform)
                sets[(size, concurrency)] = (
                    made,
                    request_environments(platform, app, f"l{size}x{concurrency}-", size),
                )
                deleted += delete_runs(platform)
        finally:
            platform.pause_pool(False)
        setup_seconds = time.monotonic() - started
        print(
            f"  {sum(2 * n for n, _ in env_sizes) + 4} environments, {deleted} runs deleted "
            f"in {setup_seconds:.0f} s",
            flush=True,
        )
        report.details["setup_environments_seconds"] = setup_seconds

        _phase(sampler, "calibration: one environment through the product's code")
        template = calibrate.provisioning(platform, cal_env)
        bound = run_replay(template, [{cal_env: e} for e in single], 1)
        if bound.failures:
            raise BenchError(f"replay of one environment failed: {bound.failures}")
        report_single(report, measured, stack.config.sandbox_latency_ms, bound, template)

        for size, concurrency in env_sizes:
            _phase(sampler, f"case 2: {size} environments at concurrency {concurrency}")
            bulk_ids, bound_ids = sets[(size, concurrency)]
            case_bulk(
                report, platform, app, template, cal_env, size, concurrency, bulk_ids, bound_ids
            )

        size, concurrency = sweep
        _phase(sampler, f"setup: {size} robots and secrets")
        started = time.monotonic()
        calibration = pairs("cal", 1)
        register(platform, calibration + pairs("s", size), cal_env)
        report.details["setup_secrets_seconds"] = time.monotonic() - started
        rotation = calibrate.rotation(platform, *calibration[0])
        _phase(sampler, f"case 3: sweep of {size} secrets at concurrency {concurrency}")
        case_sweep(
            report,
            platform,
            rotation,
            calibration[0],
            pairs("s", size),
            pairs("l", size),
            cal_env,
            concurrency,
        )
        sampler.sample()

    peak = sampler.peak
    report.add(
        Row(
            "peak worker memory (worker + runs)",
            "GiB RSS",
            peak.total_bytes / GIB,
            1.0,
            peak.total_bytes / GIB,
            "value / 1 GiB",
            "< 1",
            peak.total_bytes < GIB,
            f"{peak.processes} processes at the peak",
        )
    )
    report.details["memory"] = {
        "peak_bytes": peak.total_bytes,
        "largest_process_bytes": peak.largest_process_bytes,
        "samples": peak.samples,
        "peak_by_phase_bytes": peak.by_phase,
    }


def run_bursts(stack: Stack, report: Report, bursts: Sequence[tuple[int, int]]) -> None:
    """Case 4: bursts of commands, each its own flow run (``bench/burst.py``)."""
    for count, concurrency in bursts:
        print(f"\n== case 4: {count} environment commands at concurrency {concurrency} ==")
        result = run_burst(stack, count, concurrency)
        print(f"  {result.line()}", flush=True)
        name = f"4 burst {count} commands @ {concurrency}"
        report.add(
            Row(
                name,
                "workflows/s",
                result.workflows_per_second,
                None,
                None,
                "",
                f"all {count} completed",
                result.completed == count,
                f"{result.states}",
            )
        )
        report.add(
            Row(
                name,
                "/api/health max s",
                result.health_max,
                None,
                None,
                "",
                "< 1 s throughout",
                result.health_max < 1.0 and result.health_unanswered == 0,
                f"p50 {result.health_p50 * 1000:.0f} ms over {result.health_samples} probes",
            )
        )
        report.add(
            Row(
                name,
                "lock errors + dead letters",
                float(result.lock_errors + result.dead_lettered),
                None,
                None,
                "",
                "0",
                result.lock_errors + result.dead_lettered == 0,
            )
        )
        report.details.setdefault("bursts", []).append(result.__dict__)
