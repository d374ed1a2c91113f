"""``python -m bench.embedded_default``: the demo, N times, on each embedded database.

How docs/embedded-default.md was measured. Each run is ``idp demo --once`` in a fresh
folder on free ports, as a user runs it; afterwards the Prefect server's log is searched
for ``database is locked`` and dead-lettered event messages, and the demo's process
registry for anything left running. Prints one line per run and a summary per database;
``--json`` writes every figure to a file.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from core.settings import PROJECT_ROOT
from idp.stack import PROCESS_REGISTRY, free_port

SUMMARY = re.compile(r"From start to summary: (\d+) s")


@dataclass
class DemoRun:
    database: str
    returncode: int
    wall_seconds: float
    summary_seconds: float | None
    lock_errors: int
    dead_lettered: int
    left_running: bool


def one_run(database: str, folder: Path) -> DemoRun:
    home = folder / "home"
    argv = [str(Path(sys.executable).parent / "idp"), "demo", "--once", "--home", str(home)]
    argv += ["--database", database, "--prefect-port", str(free_port())]
    argv += ["--control-plane-port", str(free_port())]
    started = time.monotonic()
    done = subprocess.run(
        argv, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=900, check=False
    )
    wall = time.monotonic() - started
    server_log = home / "logs" / "prefect-server.log"
    text = server_log.read_text(errors="replace") if server_log.exists() else ""
    found = SUMMARY.search(done.stdout)
    return DemoRun(
        database=database,
        returncode=done.returncode,
        wall_seconds=round(wall, 1),
        summary_seconds=float(found.group(1)) if found else None,
        lock_errors=text.count("database is locked"),
        dead_lettered=text.lower().count("dead letter"),
        left_running=(home / PROCESS_REGISTRY).exists(),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.embedded_default", description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument(
        "--databases", default="sqlite,embedded-postgres", help="comma-separated, in order"
    )
    parser.add_argument("--json", type=Path, help="write every run's figures here")
    args = parser.parse_args(argv)
    runs: list[DemoRun] = []
    for database in [d for d in args.databases.split(",") if d]:
        for index in range(args.runs):
            folder = Path(tempfile.mkdtemp(prefix="idp-embedded-"))
            try:
                run = one_run(database, folder)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            runs.append(run)
            print(f"{database} #{index + 1}: {asdict(run)}", flush=True)
        mine = [r for r in runs if r.database == database]
        summaries = [r.summary_seconds for r in mine if r.summary_seconds is not None]
        print(
            f"== {database}: {sum(r.returncode == 0 for r in mine)}/{len(mine)} exit 0; "
            f"lock errors {sum(r.lock_errors for r in mine)} "
            f"(max {max(r.lock_errors for r in mine)}/run); "
            f"dead-lettered {sum(r.dead_lettered for r in mine)}; "
            f"start to summary median {statistics.median(summaries) if summaries else '-'} s, "
            f"max {max(summaries) if summaries else '-'} s; "
            f"wall median {statistics.median(r.wall_seconds for r in mine)} s; "
            f"left running: {sum(r.left_running for r in mine)}",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in runs], indent=2))
    return 0 if all(r.returncode == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
