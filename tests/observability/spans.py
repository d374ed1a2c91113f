"""Reading finished spans as a tree: parents, ancestors, attributes, URLs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def url_of(span: ReadableSpan) -> str:
    found = attrs(span).get("url.full") or attrs(span).get("http.url") or ""
    return str(found)


class Tree:
    """The spans of one trace, indexed by span id."""

    def __init__(self, spans: Sequence[ReadableSpan]) -> None:
        self.spans = list(spans)
        self.by_id = {s.context.span_id: s for s in self.spans if s.context is not None}

    def parent(self, span: ReadableSpan) -> ReadableSpan | None:
        return self.by_id.get(span.parent.span_id) if span.parent is not None else None

    def ancestors(self, span: ReadableSpan) -> list[ReadableSpan]:
        found = []
        current = self.parent(span)
        while current is not None:
            found.append(current)
            current = self.parent(current)
        return found

    def below(self, ancestor: ReadableSpan) -> list[ReadableSpan]:
        return [s for s in self.spans if ancestor in self.ancestors(s)]

    def clients(self, url_prefix: str, under: ReadableSpan | None = None) -> list[ReadableSpan]:
        """HTTP client spans to ``url_prefix`` (below ``under`` when given)."""
        pool = self.below(under) if under is not None else self.spans
        return [s for s in pool if s.kind == SpanKind.CLIENT and url_of(s).startswith(url_prefix)]

    def servers(self, service: str) -> list[ReadableSpan]:
        return [
            s
            for s in self.spans
            if s.kind == SpanKind.SERVER and attrs(s).get("idp.service") == service
        ]

    def steps(self, name: str) -> list[ReadableSpan]:
        """Prefect's task-run spans of step ``name``."""
        return [
            s
            for s in self.spans
            if attrs(s).get("prefect.run.type") == "task" and attrs(s).get("idp.step") == name
        ]
