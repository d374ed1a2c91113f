"""Tracing for every process of the platform, switched on by its entrypoint.

One trace follows a workflow run across processes: Prefect opens a span per flow run and
per task run (through the global OpenTelemetry API), the httpx and requests (PyGithub)
instrumentations add a client span per HTTP call and inject the W3C ``traceparent``
header, and the services' server spans (``services.http.instrument_app``) continue the
trace they receive. Nothing here runs at import: an entrypoint (a service's lifespan,
``idp flow-run``, ``idp demo``, a test) calls ``configure_tracing`` once.

Where spans go is configuration (``TracingSettings``), any combination of:

- ``OTEL_EXPORTER_OTLP_ENDPOINT``: OTLP/HTTP to a collector (the exporter also reads the
  other standard ``OTEL_EXPORTER_OTLP_*`` variables, e.g. headers);
- ``IDP_TRACES_FILE``: one JSON object per finished span, appended to a file;
- ``IDP_TRACES_CONSOLE``: the same JSON lines on stderr.

With none of them set, ``configure_tracing`` does nothing and the OpenTelemetry API stays
a no-op. Span attributes name things (``idp.repository``, ``idp.environment_id``,
``idp.secret_id``, ``idp.provider``, ...), never secret values: callers pass identifiers
only, and HTTP spans carry no headers or bodies.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes
from pydantic import Field

from core.settings import EnvSettings

ATTRIBUTE_PREFIX = "idp."
SERVICE_NAMESPACE = "idp"
AttributeValue = str | int | float | bool | None


class TracingSettings(EnvSettings):
    """Where this process's spans go; all unset means tracing is off. Read by entrypoints
    only (a service's settings include these)."""

    OTEL_EXPORTER_OTLP_ENDPOINT: str | None = Field(
        None, description="OTLP/HTTP collector, e.g. http://127.0.0.1:4318 (spans go to /v1/traces)"
    )
    IDP_TRACES_FILE: Path | None = Field(
        None, description="Development: append every finished span to this file as a JSON line"
    )
    IDP_TRACES_CONSOLE: bool = Field(
        False, description="Development: print every finished span to stderr as a JSON line"
    )


class JsonLinesSpanExporter(SpanExporter):
    """Appends each finished span to ``path`` as one JSON object per line.

    For development and tests: ``jq`` reads it, and a trace is every line with the same
    ``context.trace_id``. The file is opened per batch, so it can be rotated or deleted,
    and is created readable by its owner only.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        data = "".join(span.to_json(indent=None) + "\n" for span in spans).encode()
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # One O_APPEND write per batch: services and flow runs can share one file
            # without interleaving their lines.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
        return SpanExportResult.SUCCESS


def read_spans(path: Path) -> list[dict[str, Any]]:
    """The spans a ``JsonLinesSpanExporter`` wrote (an empty list when there is no file)."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


class SkipURLs(Sampler):
    """Drops client spans of calls to the given URL prefixes, samples the rest as usual.

    Flow-run processes talk to the Prefect API all the time (states, logs, events); those
    calls are Prefect's plumbing, not the workflow's work, and would bury its spans.
    """

    def __init__(self, prefixes: Sequence[str], delegate: Sampler | None = None) -> None:
        self.prefixes = tuple(p.rstrip("/") for p in prefixes if p)
        self.delegate = delegate or ParentBased(ALWAYS_ON)

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        url = (attributes or {}).get("url.full") or (attributes or {}).get("http.url")
        if isinstance(url, str) and url.startswith(self.prefixes):
            return SamplingResult(Decision.DROP)
        return self.delegate.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"SkipURLs({len(self.prefixes)} prefixes)/{self.delegate.get_description()}"


class SystemRandomIds(IdGenerator):
    """Trace and span ids from the OS's randomness.

    The SDK's default draws them from the ``random`` module's global state, which a span
    created in any thread (a background log shipper's HTTP call) would then advance under
    the feet of code that seeds or watches it (Hypothesis fails a test whose global random
    state changes while it draws an example).
    """

    def generate_span_id(self) -> int:
        return secrets.randbits(64) or 1  # 0 is the invalid id

    def generate_trace_id(self) -> int:
        return secrets.randbits(128) or 1


class _State:
    """What this process configured: one provider, its exporters, the instrumentations."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.provider: TracerProvider | None = None
        self.exporter_keys: set[str] = set()
        self.clients_instrumented = False


_STATE = _State()


def _configured_exporters(settings: TracingSettings) -> dict[str, tuple[SpanExporter, bool]]:
    """Exporters the settings ask for: key -> (exporter, batched)."""
    found: dict[str, tuple[SpanExporter, bool]] = {}
    if settings.OTEL_EXPORTER_OTLP_ENDPOINT:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = settings.OTEL_EXPORTER_OTLP_ENDPOINT.rstrip("/") + "/v1/traces"
        found[f"otlp:{endpoint}"] = (OTLPSpanExporter(endpoint=endpoint), True)
    if settings.IDP_TRACES_FILE is not None:
        path = settings.IDP_TRACES_FILE.expanduser().resolve()
        found[f"file:{path}"] = (JsonLinesSpanExporter(path), True)
    if settings.IDP_TRACES_CONSOLE:
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        console = ConsoleSpanExporter(
            out=sys.stderr, formatter=lambda span: span.to_json(indent=None) + "\n"
        )
        found["console"] = (console, False)
    return found


def _provider(service: str, skip_urls: Sequence[str]) -> TracerProvider:
    """The process's SDK provider: ours, or one somebody installed before us (joined)."""
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    attributes: dict[str, str] = {"service.namespace": SERVICE_NAMESPACE}
    if not os.environ.get("OTEL_SERVICE_NAME"):  # the standard variable wins when set
        attributes["service.name"] = service
    provider = TracerProvider(
        resource=Resource.create(attributes),
        sampler=SkipURLs(skip_urls),
        id_generator=SystemRandomIds(),
    )
    trace.set_tracer_provider(provider)
    return provider


def _instrument_clients() -> None:
    """Client spans (and ``traceparent`` injection) for httpx and requests (PyGithub)."""
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    for instrumentor in (HTTPXClientInstrumentor(), RequestsInstrumentor()):
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument()


def tracing_enabled(settings: TracingSettings | None = None) -> bool:
    """Whether this process traces: a provider is installed, or the settings name an
    exporter (so ``configure_tracing`` will install one). Instrumentation that costs
    something per request (a service's server spans) is added only then."""
    if _STATE.provider is not None or isinstance(trace.get_tracer_provider(), TracerProvider):
        return True
    settings = settings or TracingSettings.current()
    return bool(
        settings.OTEL_EXPORTER_OTLP_ENDPOINT
        or settings.IDP_TRACES_FILE is not None
        or settings.IDP_TRACES_CONSOLE
    )


def configure_tracing(
    service: str,
    *,
    settings: TracingSettings | None = None,
    exporters: Sequence[SpanExporter] = (),
    skip_urls: Sequence[str] = (),
) -> TracerProvider | None:
    """Send this process's spans where the settings say; safe to call more than once.

    ``service`` becomes ``service.name`` (unless ``OTEL_SERVICE_NAME`` is set). Extra
    ``exporters`` (tests' in-memory exporter) are added unbatched. ``skip_urls`` are URL
    prefixes whose client spans are dropped (the Prefect API, in flow-run processes).
    Returns the provider, or None when nothing asks for spans (tracing stays off).
    A later call adds exporters the first one did not have; the provider, resource and
    sampler of the first call stay.
    """
    settings = settings or TracingSettings.current()
    wanted = _configured_exporters(settings)
    with _STATE.lock:
        if _STATE.provider is None and not wanted and not exporters:
            return None
        if _STATE.provider is None:
            otlp = settings.OTEL_EXPORTER_OTLP_ENDPOINT
            _STATE.provider = _provider(service, [*skip_urls, *([otlp] if otlp else [])])
        provider = _STATE.provider
        for key, (exporter, batched) in wanted.items():
            if key in _STATE.exporter_keys:
                continue
            _STATE.exporter_keys.add(key)
            processor = BatchSpanProcessor(exporter) if batched else SimpleSpanProcessor(exporter)
            provider.add_span_processor(processor)
        for exporter in exporters:
            key = f"object:{id(exporter)}"
            if key not in _STATE.exporter_keys:
                _STATE.exporter_keys.add(key)
                provider.add_span_processor(SimpleSpanProcessor(exporter))
        if not _STATE.clients_instrumented:
            _instrument_clients()
            _STATE.clients_instrumented = True
        return provider


def flush_tracing(timeout_millis: int = 10_000) -> bool:
    """Export every finished span now (before a process exits or a test reads a file)."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        return provider.force_flush(timeout_millis)
    return True


def annotate(attributes: Mapping[str, AttributeValue]) -> None:
    """Put ``idp.<name>`` attributes on the current span (skipping None values).

    For identifiers only (repository, environment, secret id, provider); never pass a
    secret value. A no-op when tracing is off or no span is recording.
    """
    span = trace.get_current_span()
    if not span.is_recording():
        return
    for name, value in attributes.items():
        if value is not None:
            span.set_attribute(ATTRIBUTE_PREFIX + name, value)


def traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span, to continue this trace elsewhere.

    For carriers that are not HTTP headers: a flow run created with the Prefect label
    ``__OTEL_TRACEPARENT`` set to this value opens its flow span as a child of the current
    span, in whatever process runs it. None when no span is recording.
    """
    if not trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")
