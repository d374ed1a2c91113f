"""The retry policy: which errors retry, how long to wait, how retries are counted."""

from __future__ import annotations

import asyncio
import uuid
from types import SimpleNamespace

import pytest
from prefect.states import Failed

from core.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    RateLimited,
    SecretLocked,
    Unauthorized,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from core.steps import RetryPolicy, RunStats
from core.steps.policy import retry_if_transient, use_stats

PROVIDER_LIKE = RetryPolicy(retries=4, backoff_seconds=0.5, timeout_seconds=60)


def decide(exc: BaseException) -> tuple[bool, int]:
    """What the task engine would decide for ``exc``, and how many retries got counted."""
    task_run = SimpleNamespace(id=uuid.uuid4(), flow_run_id=uuid.uuid4())
    stats = RunStats()

    async def ask() -> bool:
        with use_stats(stats):
            return await retry_if_transient(None, task_run, Failed(data=exc))

    return asyncio.run(ask()), stats.retries


@pytest.mark.parametrize(
    "error, retried",
    [
        (UpstreamUnavailable("503"), True),
        (RateLimited("429"), True),
        (UpstreamTimeout("timeout"), True),
        (TimeoutError(), True),
        (Unauthorized("401"), False),
        (Forbidden("403"), False),
        (NotFound("404"), False),
        (Conflict("409"), False),
        (SecretLocked("locked"), False),
        (InvalidInput("422"), False),
        (PreconditionFailed("412"), False),
        (ValueError("a bug"), False),
    ],
)
def test_only_transient_errors_are_retried_and_each_retry_is_counted(
    error: BaseException, retried: bool
) -> None:
    assert decide(error) == (retried, int(retried))


def test_a_retry_outside_any_run_is_allowed_and_counted_nowhere() -> None:
    task_run = SimpleNamespace(id=uuid.uuid4(), flow_run_id=None)
    assert asyncio.run(retry_if_transient(None, task_run, Failed(data=UpstreamUnavailable("x"))))


def test_retry_after_raises_the_next_delay_prefect_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDP_RETRY_DELAY_SCALE", "0.01")
    delays = PROVIDER_LIKE.task_options()["retry_delay_seconds"]
    task_run = SimpleNamespace(id=uuid.uuid4(), flow_run_id=uuid.uuid4())

    async def retry_then_read(exc: BaseException) -> float:
        # As Prefect's task engine does: the condition, then the delay, in one context.
        assert await retry_if_transient(None, task_run, Failed(data=exc))
        return float(delays[0])

    assert asyncio.run(retry_then_read(RateLimited("slow down", retry_after=2))) >= 4.0  # 2/0.5
    assert asyncio.run(retry_then_read(UpstreamUnavailable("503"))) == pytest.approx(0.005)


def test_task_delays_are_scaled_when_read(monkeypatch: pytest.MonkeyPatch) -> None:
    delays = PROVIDER_LIKE.task_options()["retry_delay_seconds"]
    monkeypatch.setenv("IDP_RETRY_DELAY_SCALE", "1")
    assert [delays[i] for i in range(len(delays))] == [0.5, 1.0, 2.0, 4.0]
    monkeypatch.setenv("IDP_RETRY_DELAY_SCALE", "0.1")
    assert delays[3] == pytest.approx(0.4)


def test_task_options_carry_the_policy() -> None:
    options = PROVIDER_LIKE.task_options()
    assert options["retries"] == 4
    assert options["timeout_seconds"] == 60
    assert options["retry_jitter_factor"] == 0.5
    assert options["retry_condition_fn"] is retry_if_transient
