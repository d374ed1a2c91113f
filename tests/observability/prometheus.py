"""A real Prometheus on loopback for the dashboard tests.

Runs the ``prometheus`` binary (Debian package ``prometheus``) directly, never a system
service: a temporary config that scrapes the given targets every second, a temporary
TSDB directory, a free loopback port. ``stop()`` ends exactly the process it started.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from idp.stack import free_port

SCRAPE_SECONDS = 1


def prometheus_binary() -> str | None:
    return shutil.which("prometheus") or (
        "/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None
    )


class Prometheus:
    def __init__(self, binary: str, workdir: Path, targets: dict[str, str]) -> None:
        self.binary = binary
        self.workdir = workdir
        self.targets = targets  # job name -> base URL serving /metrics
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log = workdir / "prometheus.log"

    def start(self) -> Prometheus:
        config = {
            "global": {
                "scrape_interval": f"{SCRAPE_SECONDS}s",
                "scrape_timeout": f"{SCRAPE_SECONDS}s",
                "evaluation_interval": f"{SCRAPE_SECONDS}s",
            },
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": [urlsplit(url).netloc]}]}
                for job, url in self.targets.items()
            ],
        }
        path = self.workdir / "prometheus.yml"
        path.write_text(json.dumps(config))  # JSON is YAML
        self.process = subprocess.Popen(
            [
                self.binary,
                f"--config.file={path}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("prometheus did not become ready in 30 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def version(self) -> str:
        done = subprocess.run(
            [self.binary, "--version"], capture_output=True, text=True, check=False
        )
        return (done.stdout or done.stderr).splitlines()[0]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query; raises on a PromQL error (a broken panel query)."""
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        body = answer.json()
        if body.get("status") != "success":
            raise ValueError(f"{expr}: {body.get('errorType')}: {body.get('error')}")
        return list(body["data"]["result"])

    def label_values(self, label: str) -> list[str]:
        answer = httpx.get(f"{self.url}/api/v1/label/{label}/values", timeout=10)
        return list(answer.json()["data"])

    def targets_up(self) -> dict[str, bool]:
        answer = httpx.get(f"{self.url}/api/v1/targets", timeout=10).json()
        return {t["labels"]["job"]: t["health"] == "up" for t in answer["data"]["activeTargets"]}

    def wait_for_targets(self, timeout: float = 20) -> dict[str, bool]:
        """Target health once every target was scraped (or the timeout passed)."""
        deadline = time.monotonic() + timeout
        while True:
            health = self.targets_up()
            done = set(health) == set(self.targets) and all(health.values())
            if done or time.monotonic() > deadline:
                return health
            time.sleep(0.3)


def numbers(result: list[dict[str, Any]]) -> list[float]:
    """The finite values of an instant vector."""
    values = [float(item["value"][1]) for item in result]
    return [v for v in values if not math.isnan(v)]
