"""Figures of a benchmark run: percentiles, the printed table and the JSON file."""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Row:
    """One line of the table: a case, its figure, the bound's, and their ratio."""

    case: str
    metric: str
    value: float
    bound: float | None
    ratio: float | None  # how the case compares with the bound (see ``ratio_meaning``)
    ratio_meaning: str
    target: str
    met: bool | None
    notes: str = ""


@dataclass
class Report:
    config: dict[str, Any]
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.time)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        print_row(row)
        return row

    def environment(self) -> dict[str, Any]:
        load = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3
        return {
            "cpus": os.cpu_count(),
            "load_average": [round(x, 2) for x in load],
            "python": platform.python_version(),
            "machine": platform.machine(),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
            "seconds": round(time.time() - self.started, 1),
            "config": self.config,
            "environment": self.environment(),
            "rows": [asdict(r) for r in self.rows],
            "details": self.details,
        }

    def write(self, directory: Path = RESULTS_DIR) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(self.started))
        path = directory / f"bench-{stamp}.json"
        text = json.dumps(self.to_json(), indent=2, default=str)
        path.write_text(text)
        (directory / "latest.json").write_text(text)
        return path


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}{unit}"
    return f"{value:.3g}{unit}" if abs(value) < 10 else f"{value:.1f}{unit}"


HEADER = f"{'case':<40} {'metric':<26} {'value':>10} {'bound':>10} {'ratio':>7}  target"


def print_row(row: Row) -> None:
    mark = {True: "ok", False: "MISSED", None: ""}[row.met]
    print(
        f"{row.case:<40} {row.metric:<26} {_fmt(row.value):>10} {_fmt(row.bound):>10} "
        f"{_fmt(row.ratio):>7}  {row.target} {mark}",
        flush=True,
    )


def print_table(report: Report) -> None:
    print("\n" + HEADER)
    print("-" * len(HEADER))
    for row in report.rows:
        print_row(row)
    env = report.environment()
    print(f"\n{env['cpus']} CPUs, load average {env['load_average']} at the end of the run")
