"""What every handler does around its side effect, written once.

``Operations.run(...)`` opens the handler's OpenTelemetry span,
``execution_workers.<operation>``, inside FastAPI's own server span (attributes name the
repository, environment, secret and provider, never a value), counts errors that come
from a provider in ``downstream_errors_total{target,code,status}``, and reports the
``appenv_*`` event with ``success`` or ``error`` to the control plane. An undo (``delete``)
reports its ensure's event name with ``"operation": "delete"`` in the payload. Errors are not
translated here: the blocks already raise ``core.errors`` and the service's one
exception handler (``services/http.py``) turns them into status and body.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from blocks.platform.domain import EventName, EventResult
from core.errors import DomainError
from services.platform.execution_workers.events import EventReporter
from services.platform.execution_workers.metrics import WorkerMetrics
from services.platform.execution_workers.providers import provider_name

tracer = trace.get_tracer(__name__)
ATTRIBUTE_PREFIX = "idp."


@dataclass
class Operation:
    """The handler's view of its running operation."""

    span: Span
    metrics: WorkerMetrics
    payload: dict[str, Any] = field(default_factory=dict)
    # Extra facts for one environment's event (e.g. how many of its bindings changed).
    payload_for: dict[str, dict[str, Any]] = field(default_factory=dict)
    _counted: set[int] = field(default_factory=set)

    def uses(self, block: object, role: str = "provider") -> None:
        """Name the provider on the span (``idp.provider``, or ``idp.<role>``)."""
        self.span.set_attribute(ATTRIBUTE_PREFIX + role, provider_name(block))

    @contextmanager
    def downstream(self, block: object) -> Iterator[None]:
        """Calls to ``block``: its errors are counted as downstream errors, once."""
        try:
            yield
        except DomainError as exc:
            if id(exc) not in self._counted:
                self._counted.add(id(exc))
                target = str(exc.details.get("vendor") or provider_name(block))
                self.metrics.downstream_error(target, exc)
            raise


class Operations:
    """Per request: the reporter, the metrics and the caller's flow run (if any)."""

    def __init__(
        self, reporter: EventReporter, metrics: WorkerMetrics, flow_run_id: str | None
    ) -> None:
        self.reporter = reporter
        self.metrics = metrics
        self.flow_run_id = flow_run_id

    @contextmanager
    def run(
        self,
        name: str,
        *,
        attributes: Mapping[str, str | int | bool | None],
        event: EventName | None = None,
        environments: Sequence[str] = (),
        operation: str | None = None,
    ) -> Iterator[Operation]:
        """Span + downstream metrics + one event per environment touched.

        ``operation`` marks a handler that is not the event's ensure (``"delete"``): every
        event it reports, success or error, carries ``"operation"`` in its payload.
        """
        attrs = {ATTRIBUTE_PREFIX + k: v for k, v in attributes.items() if v is not None}
        if self.flow_run_id:
            attrs[ATTRIBUTE_PREFIX + "flow_run_id"] = self.flow_run_id
        with tracer.start_as_current_span(
            name, attributes=attrs, record_exception=False, set_status_on_exception=False
        ) as span:
            running = Operation(span, self.metrics)
            marker = {"operation": operation} if operation else {}
            running.payload.update(marker)
            try:
                yield running
            except DomainError as exc:
                span.set_status(Status(StatusCode.ERROR, exc.code))
                span.set_attribute(ATTRIBUTE_PREFIX + "error.code", exc.code)
                failure: dict[str, Any] = {**marker, "code": exc.code}
                if exc.upstream_status is not None:
                    failure["upstream_status"] = exc.upstream_status
                self._report(event, environments, EventResult.ERROR, failure, {}, operation)
                raise
            self._report(
                event,
                environments,
                EventResult.SUCCESS,
                running.payload,
                running.payload_for,
                operation,
            )

    def _report(
        self,
        event: EventName | None,
        environments: Sequence[str],
        result: EventResult,
        payload: Mapping[str, Any],
        payload_for: Mapping[str, Mapping[str, Any]],
        operation: str | None,
    ) -> None:
        if event is None:
            return
        for environment_id in dict.fromkeys(environments):
            facts = {**payload, **payload_for.get(environment_id, {})}
            self.reporter.report(
                event,
                environment_id,
                result,
                facts,
                flow_run_id=self.flow_run_id,
                operation=operation,
            )
