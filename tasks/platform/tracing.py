"""Tracing of workflow steps: domain attributes on step spans, a span per block call.

Prefect opens a span per task run (a step, or a batch item); ``traced_call``, used by
``tasks.platform.calls.in_thread`` for every block call, adds what Prefect cannot know:
``idp.workflow``, ``idp.step`` (the seed's step name; the span name is the
high-cardinality run name), ``idp.provider`` and the identifiers among the task's
parameters (repository, environment, secret, robot). Each block call then gets a child
span (``github.ensure_repository``) under which the instrumented HTTP client spans nest,
so a batch item that makes a dozen calls still shows which call went to which repository
or secret. Attributes are taken from parameters with naming names only, so a secret value
can never become one.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode
from prefect.blocks.core import Block
from prefect.context import FlowRunContext, TaskRunContext

from blocks.platform.domain import EventName
from blocks.ports import GitProvider, RegistryProvider
from core.errors import DomainError
from core.steps.step import inline_step
from core.telemetry import ATTRIBUTE_PREFIX, AttributeValue, annotate

tracer = trace.get_tracer(__name__)
# Parameters that name what a step works on; each becomes an ``idp.<name>`` attribute.
NAMING_PARAMETERS = (
    "application_id",
    "environment_id",
    "secret_id",
    "repository",
    "project",
    "robot_id",
    "aggregate_id",
    "status",
)
# What a bare ``name`` parameter names, by the role of the block it goes to.
_NAME_BY_ROLE: tuple[tuple[type, str], ...] = (
    (GitProvider, "repository"),
    (RegistryProvider, "robot"),
)


def provider_name(block: object) -> str:
    """``github``, ``harbor``, ``vault-secret-backend``, ``control-plane``, ...: the block's
    type slug without ``idp-`` (so a routed deployment shows ``execution-workers``)."""
    if isinstance(block, Block):
        return block.get_block_type_slug().removeprefix("idp-")
    return type(block).__name__.lower()


def naming_attributes(values: Mapping[str, Any], *roles: object) -> dict[str, AttributeValue]:
    """The identifiers among ``values`` (strings and integers of known names only)."""
    found: dict[str, AttributeValue] = {
        key: str(value) if isinstance(value, str) else value  # StrEnum -> its value
        for key in NAMING_PARAMETERS
        if isinstance(value := values.get(key), str | int) and not isinstance(value, bool)
    }
    name = values.get("name")
    if isinstance(name, EventName):
        found["event"] = name.value
    elif isinstance(name, str):
        for cls, attribute in _NAME_BY_ROLE:
            if any(isinstance(role, cls) for role in roles):
                found.setdefault(attribute, name)
    return found


def _annotate_step() -> None:
    """Name the workflow, step, providers and identifiers on the task run's span."""
    ctx = TaskRunContext.get()
    if ctx is None:
        return
    flow_ctx = FlowRunContext.get()
    blocks = [v for v in ctx.parameters.values() if isinstance(v, Block)]
    annotate(
        {
            "workflow": flow_ctx.flow.name if flow_ctx and flow_ctx.flow else None,
            "step": inline_step() or ctx.task.name,
            "provider": ",".join(sorted({provider_name(b) for b in blocks})) or None,
            **naming_attributes(ctx.parameters, *blocks),
        }
    )


@contextmanager
def traced_call(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Iterator[None]:
    """A span for one block call, child of the step's span; HTTP spans nest below it."""
    if not trace.get_current_span().is_recording():
        yield  # tracing is off (or the caller is not traced): no work at all
        return
    _annotate_step()
    block = getattr(fn, "__self__", None)
    provider = provider_name(block)
    operation = getattr(fn, "__name__", "call")
    try:
        bound = inspect.signature(fn).bind_partial(*args, **kwargs).arguments
    except (TypeError, ValueError):
        bound = {}
    attributes = {"provider": provider, "operation": operation, **naming_attributes(bound, block)}
    with tracer.start_as_current_span(
        f"{provider}.{operation}",
        attributes={ATTRIBUTE_PREFIX + k: v for k, v in attributes.items() if v is not None},
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield
        except DomainError as exc:
            span.set_attribute(ATTRIBUTE_PREFIX + "error.code", exc.code)
            span.set_status(Status(StatusCode.ERROR, exc.code))
            raise
        except Exception as exc:
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
