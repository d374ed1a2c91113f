"""The execution-workers' Prometheus metrics, on a registry per app instance.

Names from seed 002: ``http_requests_total{service="execution-workers",...}`` (counted by
the shared middleware) and ``downstream_errors_total{target,code,status}`` for every
error a provider (or the control plane) answered. Events that could not be reported are
counted too, since reporting them is best effort.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter

from core.errors import DomainError
from services.http import http_requests_counter

SERVICE_NAME = "execution-workers"
NO_STATUS = "none"  # the downstream never answered: refused, reset, timed out


@dataclass
class WorkerMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.http_requests = http_requests_counter(self.registry)
        self.downstream_errors = Counter(
            "downstream_errors_total",
            "Errors from providers and the control plane, by target, domain code and "
            "upstream HTTP status ('none' when no answer came)",
            ["target", "code", "status"],
            registry=self.registry,
        )
        self.event_reports = Counter(
            "domain_event_reports_total",
            "appenv_* events sent to the control plane, by outcome (reported|failed)",
            ["event", "result", "outcome"],
            registry=self.registry,
        )

    def downstream_error(self, target: str, exc: DomainError) -> None:
        status = str(exc.upstream_status) if exc.upstream_status is not None else NO_STATUS
        self.downstream_errors.labels(target, exc.code, status).inc()
