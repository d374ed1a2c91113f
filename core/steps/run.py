"""The single-run driver: a flow body that reads as its list of steps.

    async with StepRun.open(steps=STEPS, resources={"git": git}, log=log) as run:
        repository = await run(MATERIALIZE_REPOSITORIES, git, name)
        await run(APPLY_BRANCH_PROTECTION, git, repository.name)

Each ``run(step, ...)`` is one Prefect task run of the step, retried by Prefect with the
step's policy; ``run.stats`` counts the retries. On top of that:

- **compensation**: steps with an ``undo`` record it in the run's ``CompensationLog``;
  ``await run.compensate()`` undoes every recorded step not yet undone, newest first, each
  as a task run of its undo step, and settles each entry in the log;
- **people in the loop**: ``await run.wait_for(gate, Model)`` pauses the flow run until
  somebody answers with a ``Model`` (Prefect UI form or ``resume_flow_run``); the pause key
  carries the attempt, so a retried run asks again instead of skipping the gate;
- **steps chosen at run time**: ``await run.plan(planned, registry, context)`` runs a list
  read from data (a database), each planned step a task run named by its position, with
  branching on a step's output.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

from prefect.flow_runs import apause_flow_run
from prefect.input.run_input import keyset_from_paused_state, run_input_subclass_from_type
from prefect.runtime import flow_run
from prefect.states import Paused
from pydantic import BaseModel

from core.errors import DomainError, InvalidInput, shorten
from core.steps.policy import RunStats, use_stats
from core.steps.saga import CompensationEntry, CompensationLog, entry_key, generation_of
from core.steps.step import Step, running

P = ParamSpec("P")
R = TypeVar("R")
M = TypeVar("M", bound=BaseModel)
# A pause waits this long for an answer unless the gate says otherwise.
DEFAULT_GATE_TIMEOUT_SECONDS = 3600
MAX_PLAN_STEPS = 1000


@dataclass(frozen=True)
class UndoOutcome:
    """What compensating one entry did."""

    step: str
    undo: str
    arguments: dict[str, Any]
    ok: bool
    error_code: str | None = None


@dataclass(frozen=True)
class PlannedStep:
    """A step configured in data: which step runs, with what configuration, where a branch
    goes (``next``: a value the step's output names -> the id of the next step) and whether
    the plan ends after it (``terminal``)."""

    id: str
    step: str
    config: Mapping[str, Any] = field(default_factory=dict)
    next: Mapping[str, str] = field(default_factory=dict)
    terminal: bool = False


@dataclass(frozen=True)
class PlanResult:
    context: dict[str, Any]
    ran: list[str]  # ids of the planned steps that ran, in order


def _undo_registry(steps: Iterable[Step[..., Any]]) -> dict[str, Step[..., Any]]:
    return {s.undo.step.name: s.undo.step for s in steps if s.undo is not None}


class StepRun:
    """One flow run's steps (see the module docstring)."""

    def __init__(
        self,
        *,
        run_id: str,
        attempt: int,
        steps: Iterable[Step[..., Any]] = (),
        resources: Mapping[str, Any] | None = None,
        log: CompensationLog | None = None,
        generation: int = 0,
    ) -> None:
        self.run_id = run_id
        self.attempt = attempt
        self.resources = dict(resources or {})
        self.log = log
        self.generation = generation
        self.stats = RunStats()
        self.undo_steps = _undo_registry(steps)

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        *,
        steps: Iterable[Step[..., Any]] = (),
        resources: Mapping[str, Any] | None = None,
        log: CompensationLog | None = None,
    ) -> AsyncIterator[StepRun]:
        """The driver of the current flow run (outside a run: id ``local``)."""
        run_id = str(flow_run.id or "local")
        attempt = max(int(flow_run.run_count or 1), 1)
        # Only an earlier attempt of this run can have undone something.
        generation = 0
        if log is not None and attempt > 1:
            generation = generation_of(await log.entries(run_id))
        run = cls(
            run_id=run_id,
            attempt=attempt,
            steps=steps,
            resources=resources,
            log=log,
            generation=generation,
        )
        with use_stats(run.stats), running(generation, run._record):
            yield run

    # ---- steps -----------------------------------------------------------------------
    def __call__(self, step: Step[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Awaitable[R]:
        """Run ``step`` as its own task run."""
        return step.task(*args, **kwargs)

    async def _record(self, step: Step[..., Any], result: Any, call: Mapping[str, Any]) -> None:
        if self.log is None or step.undo is None:
            return
        arguments = step.undo_arguments(result, call)
        if arguments is None:
            return
        await self.log.record(
            self.run_id,
            key=entry_key(self.generation, step.name, arguments),
            step=step.name,
            undo=step.undo.step.name,
            arguments=arguments,
        )

    # ---- compensation ----------------------------------------------------------------
    async def pending(self) -> list[CompensationEntry]:
        if self.log is None:
            return []
        return [entry for entry in await self.log.entries(self.run_id) if not entry.done]

    async def compensate(self) -> list[UndoOutcome]:
        """Undo every recorded step not yet undone, newest first; an undo that fails (after
        its retries) is settled with its error and the others still run."""
        outcomes: list[UndoOutcome] = []
        for entry in reversed(await self.pending()):
            undo = self.undo_steps.get(entry.undo)
            if undo is None:
                raise InvalidInput(
                    f"no undo step {entry.undo!r} among this workflow's steps",
                    details={"undo": entry.undo, "step": entry.step},
                )
            call = {**self._resources_for(undo), **entry.arguments}
            try:
                await undo.task(**call)
            except Exception as exc:
                code = exc.code if isinstance(exc, DomainError) else "internal_error"
                assert self.log is not None
                await self.log.settle(self.run_id, entry.id, error=shorten(f"[{code}] {exc}"))
                outcomes.append(UndoOutcome(entry.step, entry.undo, entry.arguments, False, code))
                continue
            assert self.log is not None
            await self.log.settle(self.run_id, entry.id)
            outcomes.append(UndoOutcome(entry.step, entry.undo, entry.arguments, True))
        return outcomes

    def _resources_for(self, step: Step[..., Any]) -> dict[str, Any]:
        names = inspect.signature(step.fn).parameters
        return {name: value for name, value in self.resources.items() if name in names}

    # ---- people in the loop ----------------------------------------------------------
    async def wait_for(
        self,
        gate: str,
        model: type[M],
        *,
        timeout: int = DEFAULT_GATE_TIMEOUT_SECONDS,
        poll_interval: int = 1,
    ) -> M:
        """Pause until somebody answers ``gate`` with a valid ``model``."""
        key = f"{gate}-r{self.attempt}"
        answer = await apause_flow_run(
            wait_for_input=model, timeout=timeout, poll_interval=poll_interval, key=key
        )
        if answer is None:  # resumed before: Prefect loads the input but returns None
            keyset = keyset_from_paused_state(Paused(pause_key=key))
            answer = await run_input_subclass_from_type(model).aload(keyset)
        # Prefect hydrates the input before validating it: validate it again ourselves.
        return model.model_validate(answer.model_dump())

    # ---- steps chosen at run time ----------------------------------------------------
    async def plan(
        self,
        planned: Sequence[PlannedStep],
        registry: Mapping[str, Step[..., dict[str, Any]]],
        context: Mapping[str, Any],
        *,
        branch_key: str = "next_step",
        before: Callable[[PlannedStep, int], Awaitable[None]] | None = None,
    ) -> PlanResult:
        """Run ``planned`` (a snapshot: edits meanwhile do not change this run) from the
        first step. Each step is called as ``step(context=..., config=..., step_id=...)``
        and returns a mapping merged into the context. After a step, ``output[branch_key]``
        picks the next step through the planned step's ``next`` map (or names a planned
        step id directly); without it the next by position runs; a ``terminal`` step ends
        the plan."""
        unknown = sorted({p.step for p in planned} - set(registry))
        if unknown:
            raise InvalidInput(f"unknown steps: {', '.join(unknown)}", details={"steps": unknown})
        by_id = {p.id: index for index, p in enumerate(planned)}
        state = dict(context)
        ran: list[str] = []
        index: int | None = 0 if planned else None
        while index is not None:
            if len(ran) >= MAX_PLAN_STEPS:
                raise InvalidInput("the plan does not end", details={"ran": len(ran)})
            current = planned[index]
            if before is not None:
                await before(current, index)
            step = registry[current.step]
            name = f"{index + 1:02d}-{current.step}"
            output = await step.task.with_options(task_run_name=name)(
                context=state, config=dict(current.config), step_id=current.id
            )
            state.update(output or {})
            ran.append(current.id)
            index = self._next(planned, by_id, current, index, (output or {}).get(branch_key))
        return PlanResult(context=state, ran=ran)

    @staticmethod
    def _next(
        planned: Sequence[PlannedStep],
        by_id: Mapping[str, int],
        current: PlannedStep,
        index: int,
        branch: Any,
    ) -> int | None:
        if current.terminal:
            return None
        if branch is not None:
            target = current.next.get(str(branch), str(branch))
            if target not in by_id:
                raise InvalidInput(
                    f"step {current.id} chose {branch!r}, which is not a step of the plan",
                    details={"step_id": current.id, "next": str(branch)},
                )
            return by_id[target]
        return index + 1 if index + 1 < len(planned) else None
