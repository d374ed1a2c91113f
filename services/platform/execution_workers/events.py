"""Best-effort reporting of ``appenv_*`` domain events to the control plane.

Workers never write domain state (seed 000/002): they *tell* the control plane what
happened through the ``ControlPlane`` block, and the control plane records it. The side
effect has already happened when we report, so a control plane that is down, slow or
refusing never fails the request: the failure is logged, counted in
``downstream_errors_total{target="control-plane"}`` and in
``domain_event_reports_total{outcome="failed"}``, and the answer stays the side effect's.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from blocks.platform.control_plane import ControlPlane, event_id_for
from blocks.platform.domain import Aggregate, EventName, EventResult
from core.errors import DomainError, UpstreamRejected
from services.platform.execution_workers.metrics import WorkerMetrics

logger = logging.getLogger(__name__)
TARGET = "control-plane"


class EventReporter:
    def __init__(self, control_plane: ControlPlane | None, metrics: WorkerMetrics) -> None:
        self.control_plane = control_plane
        self.metrics = metrics

    def report(
        self,
        name: EventName,
        environment_id: str,
        result: EventResult,
        payload: Mapping[str, Any],
        *,
        flow_run_id: str | None = None,
        operation: str | None = None,
    ) -> bool:
        """Record one event on the environment; True when the control plane took it.

        With a caller's flow run id the event id is derived from (run, event, result,
        environment), so a retried step reports each outcome once. ``operation`` (e.g.
        ``delete``, for an undo reported under its ensure's event name) joins the key, so
        the undo's event is not mistaken for the ensure's of the same run.
        """
        if self.control_plane is None:
            return False
        event_id = None
        if flow_run_id:
            key = f"{name.value}:{result.value}" + (f":{operation}" if operation else "")
            event_id = event_id_for(flow_run_id, key, environment_id)
        try:
            self.control_plane.record_event(
                name,
                aggregate=Aggregate.ENVIRONMENT,
                aggregate_id=environment_id,
                result=result,
                payload=payload,
                flow_run_id=flow_run_id,
                event_id=event_id,
            )
        except Exception as exc:
            error = exc if isinstance(exc, DomainError) else UpstreamRejected(type(exc).__name__)
            self.metrics.downstream_error(TARGET, error)
            self.metrics.event_reports.labels(name.value, result.value, "failed").inc()
            logger.warning(
                "could not report %s (%s) for environment %s: %s",
                name.value,
                result.value,
                environment_id,
                error,
            )
            return False
        self.metrics.event_reports.labels(name.value, result.value, "reported").inc()
        return True
