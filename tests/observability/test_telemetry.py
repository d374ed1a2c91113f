"""core.telemetry on its own: off by default, exporters from settings, the file format,
dropped Prefect API calls, ids that leave the ``random`` module alone."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.sampling import Decision

from core.settings import PROJECT_ROOT
from core.telemetry import (
    JsonLinesSpanExporter,
    SkipURLs,
    SystemRandomIds,
    TracingSettings,
    _configured_exporters,
    read_spans,
)

PROBE = """
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from core.telemetry import configure_tracing, tracing_enabled
from services.http import instrument_app
app = FastAPI()
instrument_app(app, "probe")
print(tracing_enabled(), configure_tracing("probe"), type(trace.get_tracer_provider()).__name__,
      HTTPXClientInstrumentor().is_instrumented_by_opentelemetry,
      getattr(app, "_is_instrumented_by_opentelemetry", False))
"""


def test_tracing_is_off_unless_an_exporter_is_configured() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "IDP_TRACES"))}
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.split() == ["False", "None", "ProxyTracerProvider", "False", "False"]


def test_settings_choose_the_exporters(tmp_path: Path) -> None:
    assert _configured_exporters(TracingSettings()) == {}
    chosen = _configured_exporters(
        TracingSettings(
            OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:4318/",
            IDP_TRACES_FILE=tmp_path / "t.jsonl",
            IDP_TRACES_CONSOLE=True,
        )
    )
    assert sorted(chosen) == [
        "console",
        f"file:{(tmp_path / 't.jsonl').resolve()}",
        "otlp:http://127.0.0.1:4318/v1/traces",
    ]


def test_the_file_exporter_writes_one_json_span_per_line(tmp_path: Path) -> None:
    path = tmp_path / "spans" / "t.jsonl"
    provider = TracerProvider(id_generator=SystemRandomIds())
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(path)))
    tracer = provider.get_tracer(__name__)
    with (
        tracer.start_as_current_span("outer", attributes={"idp.repository": "appenv-x"}),
        tracer.start_as_current_span("inner"),
    ):
        pass
    provider.shutdown()

    lines = path.read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(line) for line in lines)
    inner, outer = read_spans(path)
    assert (inner["name"], outer["name"]) == ("inner", "outer")
    assert inner["parent_id"] == outer["context"]["span_id"]
    assert outer["attributes"] == {"idp.repository": "appenv-x"}
    assert oct(path.stat().st_mode & 0o777) == oct(0o600)
    assert read_spans(tmp_path / "missing.jsonl") == []


def test_calls_to_skipped_urls_are_not_traced() -> None:
    sampler = SkipURLs(["http://127.0.0.1:4200/api/"])
    prefect = {"http.url": "http://127.0.0.1:4200/api/flow_runs/filter"}
    github = {"url.full": "https://api.github.com/orgs/acme/repos"}
    assert sampler.should_sample(None, 1, "POST", attributes=prefect).decision == Decision.DROP
    assert (
        sampler.should_sample(None, 1, "POST", attributes=github).decision
        == Decision.RECORD_AND_SAMPLE
    )


def test_ids_leave_the_random_module_alone() -> None:
    ids = SystemRandomIds()
    before = random.getstate()
    spans = {ids.generate_span_id() for _ in range(100)}
    traces = {ids.generate_trace_id() for _ in range(100)}
    assert random.getstate() == before
    assert len(spans) == len(traces) == 100 and 0 not in spans | traces
