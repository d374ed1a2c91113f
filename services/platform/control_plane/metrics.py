"""The control plane's Prometheus metrics, on a registry per app instance.

Flow runs are short-lived processes, so workflows report their outcome and events here
and this long-lived service exposes them (names from seeds 000/001).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram

from services.http import http_requests_counter

SERVICE_NAME = "control-plane-api"
# Workflows last from seconds (a retried step) to an hour (a bulk sweep).
DURATION_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


@dataclass
class ControlPlaneMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.domain_events = Counter(
            "domain_events_total",
            "Domain events recorded, by event name and result",
            ["event", "result"],
            registry=self.registry,
        )
        self.workflow_duration = Histogram(
            "workflow_run_duration_seconds",
            "Duration of finished workflow runs",
            ["workflow", "result"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.workflow_retries = Counter(
            "workflow_retries_total",
            "Task retries inside workflow runs",
            ["workflow"],
            registry=self.registry,
        )
        self.http_requests = http_requests_counter(self.registry)

    def count_event(self, name: str, result: str) -> None:
        self.domain_events.labels(name, result).inc()

    def observe_run(self, workflow: str, result: str, duration: float, retries: int) -> None:
        self.workflow_duration.labels(workflow, result).observe(duration)
        # Touch the series even at zero so dashboards see every workflow.
        self.workflow_retries.labels(workflow).inc(retries)
