"""A workflow step, declared once: its name, its body, how it retries, whether a retried run
replays it, and what undoes it.

``Step`` is the unit both drivers run (``core.steps.run``, ``core.steps.batch``). Under the
single-run driver a step is a Prefect task run of its own (named by the seed, e.g.
``MaterializeRepositories[appenv-payments-dev]``), retried by Prefect with the step's
``RetryPolicy``; in a batch the item is the task run and its steps run inside it.

Kinds:
- ``effect``: a side effect on a provider (an *ensure*). Its result is persisted and
  cached for the flow run, so a retried run replays it as ``Cached`` instead of calling the
  provider again. The cache key is the step's name and code, its inputs (blocks left out:
  they are configuration and hold tokens), the flow run and the run's *generation*, which
  grows when a compensation undid steps: a retry after an undo does the work again.
- ``state``: reads or moves domain state. Never cached (a retried run must read the
  state again), results persisted.

``undo`` names the step that compensates this one and how to build its arguments from the
result: the driver records ``(undo step, arguments)`` durably once the step succeeded, and
runs them in reverse order when the run fails, is cancelled or crashes.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import inspect
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property, wraps
from typing import Any, Generic, Literal, ParamSpec, Protocol, TypeVar

from prefect import Task
from prefect.blocks.core import Block
from prefect.cache_policies import NO_CACHE, CachePolicy
from prefect.context import TaskRunContext
from prefect.utilities.hashing import hash_objects

from core.steps.policy import RetryPolicy

P = ParamSpec("P")
R = TypeVar("R")
StepKind = Literal["effect", "state"]
# JSON-able arguments of an undo step (no block: those are the run's resources).
UndoArguments = dict[str, Any]


@dataclass(frozen=True)
class Undo:
    """How to compensate a step: ``step`` called with ``arguments(result, call)``, where
    ``call`` holds the original step's arguments by name; ``None`` means there is nothing
    to undo (the step adopted what existed). Blocks are not arguments: the driver passes
    the run's resources (``git``, ``backend`` ...) by parameter name."""

    step: Step[..., Any]
    arguments: Callable[[Any, Mapping[str, Any]], UndoArguments | None]


# Called after a step with an undo succeeded, inside its attempt (so recording the undo is
# part of the step and retried with it): (step, result, the call's arguments by name).
Recorder = Callable[["Step[..., Any]", Any, Mapping[str, Any]], Awaitable[None]]
# The generation of the run whose steps are running, and where their undos are recorded.
_GENERATION: contextvars.ContextVar[int] = contextvars.ContextVar("idp_step_generation", default=0)
_RECORDER: contextvars.ContextVar[Recorder | None] = contextvars.ContextVar(
    "idp_step_recorder", default=None
)


# The step an item is running inline (a batch item's task run holds several steps).
_INLINE_STEP: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "idp_inline_step", default=None
)


def current_generation() -> int:
    return _GENERATION.get()


def inline_step() -> str | None:
    """The step a batch item is running now (None inside a step's own task run)."""
    return _INLINE_STEP.get()


@contextlib.contextmanager
def running(generation: int, recorder: Recorder | None) -> Iterator[None]:
    """The steps run inside the block belong to a run of ``generation`` whose undos go to
    ``recorder`` (the drivers set it; asyncio copies it into every task they start)."""
    tokens = (_GENERATION.set(generation), _RECORDER.set(recorder))
    try:
        yield
    finally:
        _RECORDER.reset(tokens[1])
        _GENERATION.reset(tokens[0])


@dataclass
class StepCache(CachePolicy):
    """Cache key of an effect step: step name and code, non-block inputs, flow run,
    generation."""

    step_name: str = ""
    code: str = ""

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        run_id = task_ctx.task_run.flow_run_id
        if run_id is None:
            return None  # outside a flow run there is nothing to replay
        values = {k: v for k, v in (inputs or {}).items() if not isinstance(v, Block)}
        return hash_objects(
            self.step_name,
            self.code,
            str(run_id),
            current_generation(),
            values,
            raise_on_failure=True,
        )


def _code_of(fn: Callable[..., Any]) -> str:
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):
        source = getattr(fn, "__qualname__", repr(fn))
    return hashlib.sha256(source.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Step(Generic[P, R]):
    """One named step of a workflow (see the module docstring)."""

    name: str
    fn: Callable[P, Awaitable[R]]
    policy: RetryPolicy
    kind: StepKind = "effect"
    # ``task_run_name`` template over the step's parameters, e.g. "Validate[{environment_id}]".
    run_name: str | None = None
    undo: Undo | None = None
    description: str = field(default="", compare=False)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Awaitable[R]:
        """Run the step as a task (the single-run driver); only inside a flow run."""
        return self.task(*args, **kwargs)

    @cached_property
    def body(self) -> Callable[P, Awaitable[R]]:
        """What an attempt runs: the step's function, then (for a step with an undo) the
        record of its undo."""
        return self._with_undo_record() if self.undo is not None else self.fn

    @cached_property
    def task(self) -> Task[P, Awaitable[R]]:
        """The step's Prefect task (built once per process)."""
        body = self.body
        cache: CachePolicy = (
            StepCache(step_name=self.name, code=_code_of(self.fn))
            if self.kind == "effect"
            else NO_CACHE
        )
        built: Task[P, Awaitable[R]] = Task(
            fn=body,
            name=self.name,
            task_run_name=self.run_name or self.name,
            description=self.description or (inspect.getdoc(self.fn) or "").split("\n")[0],
            persist_result=True,
            cache_policy=cache,
            **self.policy.task_options(),
        )
        return built

    def _with_undo_record(self) -> Callable[P, Awaitable[R]]:
        fn, step = self.fn, self
        signature = inspect.signature(fn)

        @wraps(fn)
        async def body(*args: P.args, **kwargs: P.kwargs) -> R:
            result = await fn(*args, **kwargs)
            record = _RECORDER.get()
            if record is not None:
                call = signature.bind(*args, **kwargs).arguments
                await record(step, result, call)
            return result

        return body

    def undo_arguments(self, result: Any, call: Mapping[str, Any]) -> UndoArguments | None:
        assert self.undo is not None
        return self.undo.arguments(result, call)


class Runner(Protocol):
    """What a step list is written against: ``await run(STEP, ...)``. The single-run driver
    runs each step as its own task run, a batch item runs them inline."""

    def __call__(self, step: Step[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Awaitable[R]: ...
