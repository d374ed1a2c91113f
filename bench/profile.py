"""Where a workflow's time goes: one flow run profiled with pyinstrument, in this process.

``python -m bench.profile --case single`` starts the platform like ``make bench`` does,
prepares the domain state, then runs the flow *in this process* (the worker would run
the same engine code in a subprocess) under pyinstrument, once to warm up and once
profiled, and writes the text and HTML reports to ``bench/results/``. Blocking calls in
worker threads appear as the ``await`` that waits for them (async mode), which is what a
flow's wall time is made of. Needs ``pip install pyinstrument``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.run import stack_config
from idp.stack import Stack

RESULTS = Path(__file__).resolve().parent / "results"


def _prepare(stack: Stack, case: str, size: int) -> list[list[str]]:
    """Two sets of items (warm-up, profiled) for ``case``, requested with the pool paused."""
    from bench.platform import Platform
    from bench.provisioning import delete_runs
    from bench.rotation import pairs, register

    platform = Platform(stack)
    platform.pause_pool(True)
    platform.command("/applications", {"name": "prof", "team": "bench"})
    for status in ("onboarding", "onboarded"):
        platform.cp.post("/internal/v1/applications/prof/transitions", json={"status": status})
    if case == "sweep":
        env = platform.request_environments("prof", ["sweep"])[0]
        delete_runs(platform)
        sets = [pairs("w", size), pairs("p", size)]
        register(platform, sets[0], env)
        return [[s for s, _ in sets[0]], [s for s, _ in sets[1]], [env]]
    count = 1 if case == "single" else size
    warm = platform.request_environments("prof", [f"w{i:04d}" for i in range(count)])
    profiled = platform.request_environments("prof", [f"p{i:04d}" for i in range(count)])
    delete_runs(platform)
    return [warm, profiled]


def _flow_call(case: str, items: list[str], concurrency: int) -> Any:
    from blocks.platform.workflows import (
        ApplicationEnvironmentProvisioningRequest,
        BulkEnvironmentProvisioningRequest,
        SecretRotationSweepRequest,
    )

    if case == "single":
        from flows.platform.environment_provisioning import application_environment_provisioning

        request = ApplicationEnvironmentProvisioningRequest(environment_id=items[0])
        return application_environment_provisioning(request=request, return_state=True)
    if case == "bulk":
        from flows.platform.bulk_environment_provisioning import bulk_environment_provisioning

        bulk = BulkEnvironmentProvisioningRequest(
            environment_ids=items, max_concurrency=concurrency
        )
        return bulk_environment_provisioning(request=bulk, return_state=True)
    from flows.platform.secret_rotation_sweep import secret_rotation_sweep

    sweep = SecretRotationSweepRequest(max_concurrency=concurrency, limit=len(items))
    return secret_rotation_sweep(request=sweep, return_state=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--case", choices=["single", "bulk", "sweep"], default="single")
    parser.add_argument("--size", type=int, default=100, help="environments or secrets")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args(argv)
    from pyinstrument import Profiler

    home = Path(tempfile.mkdtemp(prefix="idp-profile-"))
    config = stack_config(home, args.latency_ms)
    os.environ["PREFECT_API_URL"] = f"http://127.0.0.1:{config.prefect_port}/api"
    os.environ["PREFECT_HOME"] = str(home / "bench-client")
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    try:
        with Stack(config) as stack:
            for name, value in stack.env().items():  # the flow runs here, as on the worker
                if name.startswith(("GITHUB_", "HARBOR_", "VAULT_", "APPENV_", "SECRET_")):
                    os.environ[name] = value
            os.environ["CONTROL_PLANE_URL"] = stack.control_plane_url
            sets = _prepare(stack, args.case, args.size)
            if args.case == "sweep":
                from bench.platform import Platform
                from bench.rotation import pairs, register

                warm = asyncio.run(_flow_call(args.case, sets[0], args.concurrency))
                register(Platform(stack), pairs("p", args.size), sets[2][0])
            else:
                warm = asyncio.run(_flow_call(args.case, sets[0], args.concurrency))
            print(f"warm-up run: {warm.type.value}", flush=True)
            profiler = Profiler(interval=0.001, async_mode="enabled")
            started = time.monotonic()
            with profiler:
                state = asyncio.run(_flow_call(args.case, sets[1], args.concurrency))
            elapsed = time.monotonic() - started
    finally:
        shutil.rmtree(home, ignore_errors=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"profile-{args.case}-{time.strftime('%Y%m%d-%H%M%S')}"
    text = profiler.output_text(unicode=True, color=False, show_all=False)
    stem.with_suffix(".txt").write_text(text)
    stem.with_suffix(".html").write_text(profiler.output_html())
    print(text)
    print(f"{args.case}: {state.type.value} in {elapsed:.3f} s; reports {stem}.txt/.html")
    return 0


if __name__ == "__main__":
    sys.exit(main())
