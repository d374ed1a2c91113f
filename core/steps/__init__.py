"""The step engine every workflow family runs on.

A workflow is a list of named steps (``Step``: its body, ``RetryPolicy``, kind and undo),
declared once and driven by Prefect:

- ``StepRun`` (``core.steps.run``): one flow run; each step its own task run; undo
  actions recorded durably (``CompensationLog``) and run in reverse by ``compensate``;
  ``wait_for`` a person between steps; ``plan`` for steps chosen at run time from data,
  with branching on a step's output;
- ``Batch`` (``core.steps.batch``): the same step list for N items in one flow run, each
  item a task run, bounded concurrency, one progress artifact, per-item outcomes.

Prefect's task retries are the only retry layer (``core.steps.policy``); nothing here is
process-global: what a run counts and records travels in context variables the drivers
set for the tasks they start.
"""

from __future__ import annotations

from core.steps.batch import Batch, ItemOutcome, ItemRun
from core.steps.policy import RetryPolicy, RunStats, current_stats, is_transient, will_retry
from core.steps.run import PlannedStep, PlanResult, StepRun, UndoOutcome
from core.steps.saga import CompensationEntry, CompensationLog, SqlCompensationLog
from core.steps.step import Runner, Step, StepKind, Undo

__all__ = [
    "Batch",
    "CompensationEntry",
    "CompensationLog",
    "ItemOutcome",
    "ItemRun",
    "PlanResult",
    "PlannedStep",
    "RetryPolicy",
    "RunStats",
    "Runner",
    "SqlCompensationLog",
    "Step",
    "StepKind",
    "StepRun",
    "Undo",
    "UndoOutcome",
    "current_stats",
    "is_transient",
    "will_retry",
]
