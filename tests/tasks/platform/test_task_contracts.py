"""Fitness checks on the task layer: every step is named, persisted, bounded and retried
only on transient errors (a task without them would fail on a blip or hang forever)."""

from __future__ import annotations

import importlib
import pkgutil

import pytest
from prefect import Task
from prefect.cache_policies import NO_CACHE

import tasks
from tasks.platform.policy import retry_if_transient

SEED_STEPS = {
    "MaterializeRepositories",
    "ApplyBranchProtection",
    "ProvisionSecrets",
    "CreateSecretBindings",
    "VerifyGitOpsReconciliation",
    "FinalizeApplicationEnvironmentProvisioning",
}
# Tasks that retry in code, per item, instead of as a whole.
RETRY_IN_CODE = {"RotateSecretBatch", "SettleFailedRotation", "ProvisionEnvironmentBatch"}


def all_tasks() -> list[Task[..., object]]:
    found: dict[str, Task[..., object]] = {}
    for info in pkgutil.walk_packages(tasks.__path__, "tasks."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if isinstance(value, Task):
                found[value.name] = value
    return sorted(found.values(), key=lambda t: t.name)


def test_the_seed_step_names_are_task_names() -> None:
    assert {t.name for t in all_tasks()} >= SEED_STEPS


@pytest.mark.parametrize("task", all_tasks(), ids=lambda t: t.name)
def test_every_task_is_named_persisted_and_bounded(task: Task[..., object]) -> None:
    assert task.task_run_name is not None
    assert task.persist_result is True
    if task.name in RETRY_IN_CODE:
        assert task.cache_policy is NO_CACHE
        return
    assert task.retries > 0
    assert task.retry_condition_fn is retry_if_transient
    assert task.retry_jitter_factor
    assert task.timeout_seconds is not None and task.timeout_seconds > 0
