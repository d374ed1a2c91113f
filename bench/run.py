"""``make bench``: the platform's throughput and latency against the asyncio lower bound.

One run starts the whole platform as real processes (``idp.stack``: prefect server,
sandbox with ``--latency-ms`` per provider call, control plane, process worker), then:

1. one ApplicationEnvironmentProvisioning per control-plane command, several times:
   in-flow wall time vs the critical path (6 x latency) and command -> first step;
2. bulk provisioning of N environments at concurrency C (BulkEnvironmentProvisioning);
3. a rotation sweep of S secrets at concurrency C (SecretRotationSweep);
4. for each, the lower bound: the same HTTP calls, same concurrency, plain asyncio + httpx
   (``bench/lowerbound.py``), in the same run; every case prints its ratio to it;

and samples the worker's memory (worker + flow-run processes) throughout. The table is
printed and the figures written to ``bench/results/`` (git-ignored). ``--scale small``
validates the whole thing in a couple of minutes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from idp.databases import CHOICES, Databases, databases
from idp.stack import Stack, StackConfig, free_port

# Per scale: bulk sizes N:C, sweep size S:C, case 1 repetitions, command bursts N:C.
SCALES: dict[str, tuple[str, str, int, str]] = {
    "small": ("10:5", "50:10", 3, "20:20"),
    "full": ("100:20,500:100", "1000:50", 5, "100:20"),
}
CASES = ("flows", "burst")
APPLICATION = "bench"


def stack_config(home: Path, latency_ms: float) -> StackConfig:
    """The platform the benchmarks run against (also ``bench.profile``'s)."""
    return StackConfig(
        home=home,
        prefect_port=free_port(),
        control_plane_port=free_port(),
        worker_limit=4,
        worker_poll_seconds=1.0,
        sandbox_latency_ms=latency_ms,
        extra_env={
            # Setup requests 1,200 environments with the pool paused; Prefect's late-run
            # service would rewrite each waiting run's state meanwhile and lock the SQLite
            # database for the commands. No measured run is ever late.
            "PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED": "false",
            # GitHub allows a token 5,000 requests an hour; the full run makes ~7,000 (5 per
            # environment), so the sandbox plays a GitHub without that limit (as GHES can).
            "IDP_SANDBOX_GITHUB_RATE_LIMIT": "1000000",
        },
    )


def _on(config: StackConfig, db: Databases) -> StackConfig:
    config.database = db.stack_database
    config.extra_env.update(db.env)
    return config


def _pairs(text: str) -> list[tuple[int, int]]:
    return [(int(a), int(b)) for a, b in (p.split(":") for p in text.split(",") if p)]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--scale", choices=sorted(SCALES), default="full")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="per provider call")
    parser.add_argument("--envs", help="bulk sizes as N:C[,N:C] (default: by scale)")
    parser.add_argument("--secrets", help="sweep size as S:C (default: by scale)")
    parser.add_argument("--runs", type=int, help="case 1 repetitions (default: by scale)")
    parser.add_argument("--bursts", help="command bursts as N:C[,N:C] (default: by scale)")
    parser.add_argument(
        "--cases",
        default=",".join(CASES),
        help="which cases, comma-separated: flows (cases 1-3), burst (case 4)",
    )
    parser.add_argument("--keep-home", action="store_true", help="keep logs and databases")
    parser.add_argument(
        "--database",
        choices=CHOICES,
        default="auto",
        help="Prefect's and the control plane's database (auto: the PostgreSQL on "
        "127.0.0.1:5432 when it answers, else the embedded default; see idp/databases.py)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    default_envs, default_secrets, default_runs, default_bursts = SCALES[args.scale]
    cases = [c for c in args.cases.split(",") if c]
    if unknown := set(cases) - set(CASES):
        print(f"unknown cases: {', '.join(sorted(unknown))} (choose from {', '.join(CASES)})")
        return 2
    bursts = _pairs(args.bursts or default_bursts)
    env_sizes = _pairs(args.envs or default_envs)
    sweep_size, sweep_concurrency = _pairs(args.secrets or default_secrets)[0]
    runs = args.runs or default_runs
    home = Path(tempfile.mkdtemp(prefix="idp-bench-"))
    config = stack_config(home, args.latency_ms)
    # The benchmark process loads blocks and runs the calibration items through Prefect:
    # point it at the stack's API before anything imports Prefect.
    os.environ["PREFECT_API_URL"] = f"http://127.0.0.1:{config.prefect_port}/api"
    os.environ["PREFECT_HOME"] = str(home / "bench-client")
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"

    from bench.report import Report, print_table

    report = Report(
        config={
            "scale": args.scale,
            "latency_ms": args.latency_ms,
            "envs": env_sizes,
            "secrets": [sweep_size, sweep_concurrency],
            "case1_runs": runs,
            "bursts": bursts,
            "cases": cases,
        }
    )
    print(f"Starting the platform (logs in {home}/logs) ...", flush=True)
    started = time.monotonic()
    try:
        with databases(args.database) as db, Stack(_on(config, db)) as stack:
            report.config["database"] = db.kind
            print(f"Platform up on {db.kind} in {time.monotonic() - started:.0f} s\n", flush=True)
            from bench.cases import run_bursts, run_cases

            if "flows" in cases:
                run_cases(stack, report, env_sizes, (sweep_size, sweep_concurrency), runs)
            if "burst" in cases:
                run_bursts(stack, report, bursts)
    finally:
        if args.keep_home:
            print(f"Kept {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)
    print_table(report)
    path = report.write()
    print(f"Figures written to {path}")
    missed = [r for r in report.rows if r.met is False]
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
