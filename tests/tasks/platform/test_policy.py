"""The retry policy: which errors retry, how long to wait, how retries are counted."""

from __future__ import annotations

import asyncio
import uuid
from types import SimpleNamespace

import pytest
from prefect.states import Failed

from core.errors import (
    Conflict,
    DomainError,
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
from core.settings import get_settings
from tasks.platform.policy import PROVIDER, RETRIES, RetryPolicy, retry_if_transient, retrying


def decide(exc: BaseException) -> tuple[bool, int]:
    """What the task engine would decide for ``exc``, and how many retries got counted."""
    task_run = SimpleNamespace(id=uuid.uuid4(), flow_run_id=uuid.uuid4())
    decision = retry_if_transient(None, task_run, Failed(data=exc))
    return decision, RETRIES.pop(task_run.flow_run_id)


@pytest.mark.parametrize(
    "error, retried",
    [
        (UpstreamUnavailable("503"), True),
        (RateLimited("429", retry_after=1), True),
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


def test_task_delays_are_scaled_when_read(monkeypatch: pytest.MonkeyPatch) -> None:
    delays = PROVIDER.task_options()["retry_delay_seconds"]
    monkeypatch.setenv("IDP_RETRY_DELAY_SCALE", "1")
    get_settings.cache_clear()
    assert [delays[i] for i in range(len(delays))] == [0.5, 1.0, 2.0, 4.0]
    monkeypatch.setenv("IDP_RETRY_DELAY_SCALE", "0.1")
    get_settings.cache_clear()
    assert delays[3] == pytest.approx(0.4)


def test_in_code_delays_honour_retry_after() -> None:
    policy = RetryPolicy(retries=3, backoff_seconds=0.01, timeout_seconds=1)
    assert policy.delay_before(1, RateLimited("slow down", retry_after=2.5)) >= 2.5
    assert policy.delay_before(1, UpstreamUnavailable("503")) < 0.1


class Script:
    """Answers a scripted list of outcomes, one per call."""

    def __init__(self, *outcomes: object) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    async def __call__(self) -> object:
        self.calls += 1
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        if outcome == "hang":
            await asyncio.sleep(10)
        return outcome


POLICY = RetryPolicy(retries=3, backoff_seconds=0.01, timeout_seconds=0.2)


def test_retrying_recovers_from_transient_errors_and_counts_retries() -> None:
    script = Script(UpstreamUnavailable("503"), "hang", "done")
    key = uuid.uuid4()

    assert asyncio.run(retrying(POLICY, script, flow_run_id=key)) == "done"
    assert (script.calls, RETRIES.pop(key)) == (3, 2)


def test_retrying_gives_up_at_once_on_a_permanent_error() -> None:
    script = Script(Forbidden("403"), "never reached")

    with pytest.raises(DomainError) as raised:
        asyncio.run(retrying(POLICY, script))
    assert (raised.value.code, script.calls) == ("forbidden", 1)


def test_retrying_stops_after_its_retries() -> None:
    script = Script(*[UpstreamUnavailable("503")] * 4)

    with pytest.raises(UpstreamUnavailable):
        asyncio.run(retrying(POLICY, script))
    assert script.calls == 4
