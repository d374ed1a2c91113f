"""Fitness checks on the step layer: every step is declared once, named in CamelCase,
persisted, bounded and retried only on transient errors by Prefect (a step without them
would fail on a blip or hang forever), and every undo is a step of the same module set."""

from __future__ import annotations

import importlib
import pkgutil
import re

import pytest
from prefect.cache_policies import NO_CACHE

import tasks
from core.steps import Step
from core.steps.policy import retry_if_transient
from core.steps.step import StepCache

CAMEL_CASE = re.compile(r"^(?:[A-Z][a-z0-9]+)+$")
SEED_STEPS = {
    "MaterializeRepositories",
    "ApplyBranchProtection",
    "ProvisionSecrets",
    "CreateSecretBindings",
    "VerifyGitOpsReconciliation",
    "FinalizeApplicationEnvironmentProvisioning",
}


def all_steps() -> list[Step[..., object]]:
    found: dict[str, Step[..., object]] = {}
    for info in pkgutil.walk_packages(tasks.__path__, "tasks."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if isinstance(value, Step):
                assert found.get(value.name, value) is value, f"{value.name} declared twice"
                found[value.name] = value
    return sorted(found.values(), key=lambda s: s.name)


def test_the_seed_step_names_are_steps() -> None:
    assert {s.name for s in all_steps()} >= SEED_STEPS


@pytest.mark.parametrize("step", all_steps(), ids=lambda s: s.name)
def test_every_step_is_named_persisted_bounded_and_retried_by_prefect(
    step: Step[..., object],
) -> None:
    task = step.task
    assert CAMEL_CASE.match(step.name), step.name
    assert task.name == step.name
    assert task.task_run_name is not None
    assert task.persist_result is True
    assert task.retries > 0
    assert task.retry_condition_fn is retry_if_transient
    assert task.retry_jitter_factor
    assert task.timeout_seconds is not None and task.timeout_seconds > 0
    if step.kind == "state":
        assert task.cache_policy is NO_CACHE
    else:
        assert isinstance(task.cache_policy, StepCache)


@pytest.mark.parametrize("step", [s for s in all_steps() if s.undo], ids=lambda s: s.name)
def test_every_undo_is_a_declared_effect_step(step: Step[..., object]) -> None:
    assert step.undo is not None
    assert step.undo.step in all_steps()
    assert step.kind == "effect"
