"""Peak memory of the Prefect worker and every flow-run process it starts.

A sampler thread reads ``VmRSS`` from ``/proc`` for the worker and all its live
descendants a few times a second and keeps the largest sum (shared pages are counted
once per process, so the figure errs on the high side). Linux only; elsewhere it
reports nothing.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from idp.stack import descendants


def rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


@dataclass
class Peak:
    total_bytes: int = 0
    processes: int = 0
    largest_process_bytes: int = 0
    samples: int = 0
    by_phase: dict[str, int] = field(default_factory=dict)


class MemorySampler:
    """Samples ``root_pid()`` (re-read each time: the worker may be replaced) and its tree."""

    def __init__(self, root_pid: object, interval: float = 0.2) -> None:
        self.root_pid = root_pid
        self.interval = interval
        self.peak = Peak()
        self.phase = "setup"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-sampler", daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def sample(self) -> int:
        root = self.root_pid() if callable(self.root_pid) else int(str(self.root_pid))
        pids = [root, *descendants(root)]
        sizes = [rss_bytes(pid) for pid in pids]
        total = sum(sizes)
        peak = self.peak
        peak.samples += 1
        if total > peak.total_bytes:
            peak.total_bytes, peak.processes = total, len([s for s in sizes if s])
        peak.largest_process_bytes = max(peak.largest_process_bytes, *sizes)
        peak.by_phase[self.phase] = max(peak.by_phase.get(self.phase, 0), total)
        return total

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()
