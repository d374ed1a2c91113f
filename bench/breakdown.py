"""Where case 1's in-flow time goes, read from the traces of worker-run flows.

``python -m bench.breakdown`` starts the platform like ``make bench`` does, with every
process tracing to one file (``IDP_TRACES_FILE``), sends ``--runs`` provisioning commands
one after the other as case 1 does, and splits each run's flow span into phases:

- ``setup``: flow span start -> first step (loading the blocks, the engine's first task);
- ``provider HTTP`` / ``control-plane HTTP``: time inside steps covered by client spans to
  the sandbox's providers or to the control plane (union of intervals, so parallel calls
  count once);
- ``in steps, not HTTP``: the rest of the steps' spans (Prefect's task engine, our code);
- ``between steps``: gaps in the flow between one step's end and the next one's start;
- ``teardown``: last step's end -> flow span end (result, final state).

The phases add up to the flow span. The median of each is printed with the critical path
(6 x latency). ``--profile`` also runs the last command's flow-run process under
pyinstrument (through the deployment's ``command`` job variable) and writes its report to
``bench/results/``; that profile includes the process's start and imports.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.platform import BenchError, Platform, parse_time
from bench.run import stack_config
from blocks.platform.domain import WORKFLOW_APPENV_PROVISIONING
from core.telemetry import read_spans
from idp.stack import BIN, Stack

RESULTS = Path(__file__).resolve().parent / "results"
CRITICAL_PATH_STEPS = 6
PHASES = (
    "setup",
    "provider HTTP",
    "control-plane HTTP",
    "in steps, not HTTP",
    "between steps",
    "teardown",
)

Interval = tuple[float, float]


def _seconds(value: str) -> float:
    parsed = parse_time(value)
    assert parsed is not None
    return parsed.timestamp()


def _span_interval(span: dict[str, Any]) -> Interval:
    return _seconds(span["start_time"]), _seconds(span["end_time"])


def union_length(intervals: Iterable[Interval]) -> float:
    """Total time covered by ``intervals`` (overlaps counted once)."""
    total, end = 0.0, float("-inf")
    for start, stop in sorted(intervals):
        if stop <= end:
            continue
        total += stop - max(start, end)
        end = stop
    return total


@dataclass
class RunBreakdown:
    flow_seconds: float
    phases: dict[str, float]
    # name, offset, length, provider calls, control-plane calls
    steps: list[tuple[str, float, float, int, int]] = field(default_factory=list)


def breakdown(spans: list[dict[str, Any]], run_id: str, control_plane_url: str) -> RunBreakdown:
    """Split the flow span of ``run_id`` into ``PHASES`` (seconds)."""
    [flow] = [s for s in spans if s["attributes"].get("prefect.run.id") == run_id]
    trace_id, flow_id = flow["context"]["trace_id"], flow["context"]["span_id"]
    mine = [s for s in spans if s["context"]["trace_id"] == trace_id]
    children: dict[str, list[dict[str, Any]]] = {}
    for span in mine:
        children.setdefault(span["parent_id"] or "", []).append(span)

    def below(span_id: str) -> list[dict[str, Any]]:
        found, stack = [], list(children.get(span_id, []))
        while stack:
            span = stack.pop()
            found.append(span)
            stack.extend(children.get(span["context"]["span_id"], []))
        return found

    start, end = _span_interval(flow)
    steps = sorted(
        (s for s in children.get(flow_id, []) if s["attributes"].get("prefect.run.type") == "task"),
        key=lambda s: s["start_time"],
    )
    if not steps:
        raise BenchError(f"flow run {run_id} has no step spans in the traces file")
    provider: list[Interval] = []
    control_plane: list[Interval] = []
    calls: list[tuple[int, int]] = []
    for step in steps:
        mine_provider, mine_control_plane = len(provider), len(control_plane)
        for span in below(step["context"]["span_id"]):
            url = str(span["attributes"].get("http.url") or span["attributes"].get("url.full", ""))
            if span["kind"] != "SpanKind.CLIENT" or not url:
                continue
            (control_plane if url.startswith(control_plane_url) else provider).append(
                _span_interval(span)
            )
        calls.append((len(provider) - mine_provider, len(control_plane) - mine_control_plane))
    step_intervals = [_span_interval(s) for s in steps]
    in_steps = union_length(step_intervals)
    provider_s = union_length(provider)
    control_plane_s = union_length(control_plane)
    first, last = step_intervals[0][0], max(stop for _, stop in step_intervals)
    phases = {
        "setup": first - start,
        "provider HTTP": provider_s,
        "control-plane HTTP": control_plane_s,
        "in steps, not HTTP": in_steps - provider_s - control_plane_s,
        "between steps": (last - first) - in_steps,
        "teardown": end - last,
    }
    return RunBreakdown(
        flow_seconds=end - start,
        phases=phases,
        steps=[
            (s["attributes"].get("idp.step") or s["name"], a - start, b - a, *counts)
            for s, (a, b), counts in zip(steps, step_intervals, calls, strict=True)
        ],
    )


def _wait_for_trace(platform: Platform, traces: Path, run_id: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30
    while True:
        spans = read_spans(traces)
        if any(s["attributes"].get("prefect.run.id") == run_id for s in spans):
            return spans
        if time.monotonic() > deadline:
            raise BenchError(f"no flow span of {run_id} in {traces}")
        time.sleep(0.5)


def _profile_next_run(platform: Platform, report: Path) -> None:
    """The provisioning deployment's next flow-run process runs under pyinstrument."""
    command = (
        f"{BIN / 'pyinstrument'} --interval 0.001 -r text --show-all -o {report} "
        f"-m idp.cli flow-run"
    )
    deployment = platform.deployment_id(WORKFLOW_APPENV_PROVISIONING)
    response = platform.prefect.patch(
        f"/deployments/{deployment}", json={"job_variables": {"command": command}}
    )
    response.raise_for_status()


def _wait_for_profile(path: Path, timeout: float = 120) -> None:
    """pyinstrument renders its report after the run ended: let it finish."""
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.stat().st_size > 0):
        if time.monotonic() > deadline:
            raise BenchError(f"pyinstrument wrote no report to {path}")
        time.sleep(0.5)
    time.sleep(1)  # the last write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.breakdown", description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--profile", action="store_true", help="pyinstrument the last run")
    args = parser.parse_args(argv)
    home = Path(tempfile.mkdtemp(prefix="idp-breakdown-"))
    traces = home / "traces.jsonl"
    config = stack_config(home, args.latency_ms)
    config.extra_env["IDP_TRACES_FILE"] = str(traces)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    profile_path = RESULTS / f"profile-flow-run-process-{stamp}.txt"
    results: list[RunBreakdown] = []
    try:
        with Stack(config) as stack:
            platform = Platform(stack)
            onboarding = platform.command("/applications", {"name": "bd", "team": "bench"})
            platform.wait_run(str(onboarding["last_flow_run_id"]), timeout=180)
            for i in range(args.runs):
                if args.profile and i == args.runs - 1:
                    _profile_next_run(platform, profile_path)
                env = platform.command("/applications/bd/environments", {"name": f"r{i}"})
                run_id = str(env["last_flow_run_id"])
                run = platform.wait_run(run_id, timeout=180)
                if run["state"]["type"] != "COMPLETED":
                    raise BenchError(f"run {run_id} ended {run['state']['name']}")
                spans = _wait_for_trace(platform, traces, run_id)
                found = breakdown(spans, run_id, stack.control_plane_url)
                results.append(found)
                print(
                    f"  run {i + 1}/{args.runs}: flow span {found.flow_seconds:.3f} s", flush=True
                )
            if args.profile:
                _wait_for_profile(profile_path)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    critical = CRITICAL_PATH_STEPS * args.latency_ms / 1000
    print_breakdown(results, critical)
    if args.profile:
        print(f"\nProfile of the last flow-run process: {profile_path}")
    return 0


def print_breakdown(results: list[RunBreakdown], critical: float) -> None:
    total = statistics.median(r.flow_seconds for r in results)
    print(f"\nFlow span, median of {len(results)} runs: {total:.3f} s ")
    print(f"(critical path {critical:.3f} s, ratio {total / critical:.1f}x)\n")
    print(f"{'phase':<22} {'median s':>9} {'share':>6}")
    for phase in PHASES:
        value = statistics.median(r.phases[phase] for r in results)
        print(f"{phase:<22} {value:>9.3f} {value / total:>6.0%}")
    print("\nSteps of the last run (offset from the flow span's start, length, HTTP calls):")
    for name, offset, length, provider, control_plane in results[-1].steps:
        print(
            f"  {name:<45} +{offset:.3f} s  {length * 1000:6.1f} ms  "
            f"{provider} provider, {control_plane} control plane"
        )


if __name__ == "__main__":
    sys.exit(main())
