"""The step engine under a real Prefect API: retries, caching across a retried run,
compensation from a durable log, a person in the loop, steps chosen at run time, batches.

The flows here are the engine's own examples: small, with steps that count their calls
(a dict per test, keyed by a fresh id) so each test can say what ran and how often. The
compensation log is the engine's SQL log on a real SQLite file.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.flow_runs import resume_flow_run
from prefect.states import State
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import create_async_engine

from core.errors import NotFound, RateLimited, UpstreamUnavailable
from core.steps import (
    Batch,
    ItemRun,
    PlannedStep,
    RetryPolicy,
    SqlCompensationLog,
    Step,
    StepRun,
    Undo,
)

pytestmark = pytest.mark.usefixtures("prefect_harness")

FAST = RetryPolicy(retries=3, backoff_seconds=0.01, timeout_seconds=20, jitter=0)
# What the steps did, per test: calls[test id][step] = count; made[test id] = live things.
CALLS: dict[str, Counter[str]] = {}
MADE: dict[str, set[str]] = {}
FAILURES: dict[str, list[Exception]] = {}


def fresh() -> str:
    key = uuid.uuid4().hex[:8]
    CALLS[key], MADE[key], FAILURES[key] = Counter(), set(), []
    return key


def _fail_if_scripted(key: str, step: str) -> None:
    script = FAILURES[key]
    if script and step == "Flaky":
        raise script.pop(0)


async def _create(key: str, thing: str) -> str:
    CALLS[key]["Create"] += 1
    MADE[key].add(thing)
    return thing


async def _destroy(key: str, thing: str) -> bool:
    CALLS[key]["Destroy"] += 1
    existed = thing in MADE[key]
    MADE[key].discard(thing)
    return existed


async def _flaky(key: str) -> str:
    CALLS[key]["Flaky"] += 1
    _fail_if_scripted(key, "Flaky")
    return "ok"


DESTROY = Step("Destroy", _destroy, FAST, run_name="Destroy[{thing}]")
CREATE = Step(
    "Create",
    _create,
    FAST,
    run_name="Create[{thing}]",
    undo=Undo(DESTROY, lambda result, call: {"key": call["key"], "thing": result}),
)
FLAKY = Step("Flaky", _flaky, FAST, kind="state")
STEPS = (CREATE, DESTROY, FLAKY)


@pytest.fixture
def log(tmp_path: Path) -> Iterator[SqlCompensationLog]:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'engine.db'}")
    sql_log = SqlCompensationLog(engine)
    asyncio.run(sql_log.create_table())
    yield sql_log
    asyncio.run(engine.dispose())


def run(awaitable: Any) -> Any:
    async def wait() -> Any:
        return await awaitable

    return asyncio.run(wait())


async def task_runs(flow_run_id: Any) -> list[Any]:
    async with get_client() as client:
        return await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )


def wait_for_task_states(flow_run_id: Any, expected: int) -> list[Any]:
    """Task-run states reach the API through events, after the flow's own final state."""
    deadline = time.monotonic() + 30
    while True:
        found = run(task_runs(flow_run_id))
        if len([t for t in found if t.state and t.state.is_final()]) >= expected:
            return found
        if time.monotonic() > deadline:
            return found
        time.sleep(0.3)


# ---- retries -----------------------------------------------------------------------
@flow
async def retrying_flow(key: str) -> int:
    async with StepRun.open(steps=STEPS) as steps:
        await steps(FLAKY, key)
        return steps.stats.retries


def test_a_transient_error_is_retried_by_prefect_and_counted() -> None:
    key = fresh()
    FAILURES[key] += [UpstreamUnavailable("503"), UpstreamUnavailable("503")]

    assert run(retrying_flow(key)) == 2
    assert CALLS[key]["Flaky"] == 3


def test_a_permanent_error_fails_the_step_after_one_attempt() -> None:
    key = fresh()
    FAILURES[key] += [NotFound("gone")]

    state = run(retrying_flow(key, return_state=True))

    assert state.is_failed()
    assert CALLS[key]["Flaky"] == 1


def test_retry_after_is_honoured_as_a_lower_bound() -> None:
    key = fresh()
    FAILURES[key] += [RateLimited("slow down", retry_after=1.0)]

    started = time.monotonic()
    assert run(retrying_flow(key)) == 1
    assert time.monotonic() - started >= 1.0
    assert CALLS[key]["Flaky"] == 2


# ---- caching across a retried flow run, compensation --------------------------------
@flow(retries=1, retry_delay_seconds=0)
async def create_then_fail(key: str, fail_times: int, compensate: bool, db: str) -> list[str]:
    engine = create_async_engine(db)
    log = SqlCompensationLog(engine)
    try:
        async with StepRun.open(steps=STEPS, resources={}, log=log) as steps:
            await steps(CREATE, key, "repo")
            await steps(CREATE, key, "secret")
            try:
                if CALLS[key]["attempts"] < fail_times:
                    CALLS[key]["attempts"] += 1
                    raise NotFound("the check failed")
            except NotFound:
                if compensate:
                    await steps.compensate()
                raise
            return sorted(MADE[key])
    finally:
        await engine.dispose()


def db_url(log: SqlCompensationLog) -> str:
    return str(log.engine.url)


def test_a_retried_run_replays_completed_effect_steps_from_cache(
    log: SqlCompensationLog,
) -> None:
    key = fresh()

    state = run(create_then_fail(key, 1, False, db_url(log), return_state=True))

    assert state.is_completed(), state.message
    assert CALLS[key]["Create"] == 2  # once each: the second attempt replayed both
    found = wait_for_task_states(state.state_details.flow_run_id, 4)
    cached = [t for t in found if t.state and t.state.name == "Cached"]
    assert sorted(t.name for t in cached) == ["Create[repo]", "Create[secret]"]


def test_compensation_undoes_in_reverse_and_a_retry_does_the_work_again(
    log: SqlCompensationLog,
) -> None:
    key = fresh()

    state = run(create_then_fail(key, 1, True, db_url(log), return_state=True))

    assert state.is_completed(), state.message
    assert state.result() == ["repo", "secret"]
    # Attempt 1 created both and undid both (newest first); attempt 2 created both again.
    assert CALLS[key]["Create"] == 4
    assert CALLS[key]["Destroy"] == 2
    flow_run_id = str(state.state_details.flow_run_id)
    entries = run(log.entries(flow_run_id))
    assert [(e.step, e.arguments["thing"], e.done) for e in entries] == [
        ("Create", "repo", True),
        ("Create", "secret", True),
        ("Create", "repo", False),
        ("Create", "secret", False),
    ]
    found = wait_for_task_states(flow_run_id, 6)
    undo_runs = sorted((t.start_time, t.name) for t in found if t.name.startswith("Destroy"))
    assert [name for _, name in undo_runs] == ["Destroy[secret]", "Destroy[repo]"]  # newest first


def test_compensating_twice_undoes_nothing_more(log: SqlCompensationLog) -> None:
    key = fresh()

    @flow
    async def twice(key: str) -> list[int]:
        async with StepRun.open(steps=STEPS, log=log) as steps:
            await steps(CREATE, key, "repo")
            first = await steps.compensate()
            second = await steps.compensate()
            return [len(first), len(second)]

    assert run(twice(key)) == [1, 0]
    assert MADE[key] == set()


# ---- a person in the loop -----------------------------------------------------------
class Approval(BaseModel):
    approved: bool
    approver: str = Field(min_length=2)


@flow
async def gated(key: str) -> dict[str, Any]:
    async with StepRun.open(steps=STEPS) as steps:
        answer = await steps.wait_for("approval", Approval, timeout=60)
        if answer.approved:
            await steps(CREATE, key, "approved-thing")
        return answer.model_dump()


def test_a_gate_waits_for_a_valid_answer() -> None:
    key = fresh()
    answers: list[State] = []

    def answer_when_paused(flow_run_id_box: list[Any]) -> None:
        async def wait_paused() -> Any:
            async with get_client() as client:
                for _ in range(300):
                    runs = await client.read_flow_runs(
                        flow_run_filter=FlowRunFilter(
                            state=FlowRunFilterState(
                                type=FlowRunFilterStateType(any_=[StateType.PAUSED])
                            )
                        )
                    )
                    for found in runs:
                        if found.parameters.get("key") == key:
                            return found.id
                    await asyncio.sleep(0.2)
            raise AssertionError("the flow never paused")

        flow_run_id = asyncio.run(wait_paused())
        flow_run_id_box.append(flow_run_id)
        with pytest.raises(RuntimeError, match="approver"):
            resume_flow_run(flow_run_id, run_input={"approved": True, "approver": "x"})
        resume_flow_run(flow_run_id, run_input={"approved": True, "approver": "alice"})

    box: list[Any] = []
    resumer = threading.Thread(target=answer_when_paused, args=(box,))
    resumer.start()
    state = run(gated(key, return_state=True))
    resumer.join(timeout=60)
    answers.append(state)

    assert state.is_completed(), state.message
    assert state.result() == {"approved": True, "approver": "alice"}
    assert MADE[key] == {"approved-thing"}


# ---- steps chosen at run time -------------------------------------------------------
async def _score(context: dict[str, Any], config: dict[str, Any], step_id: str) -> dict[str, Any]:
    CALLS[context["key"]][f"score:{step_id}"] += 1
    return {"score": config["score"]}


async def _decide(context: dict[str, Any], config: dict[str, Any], step_id: str) -> dict[str, Any]:
    verdict = "high" if context["score"] >= config["threshold"] else "low"
    return {"next_step": verdict}


async def _note(context: dict[str, Any], config: dict[str, Any], step_id: str) -> dict[str, Any]:
    CALLS[context["key"]][f"note:{step_id}"] += 1
    return {"verdict": config["verdict"]}


REGISTRY = {
    "score": Step("Score", _score, FAST, kind="state"),
    "decide": Step("Decide", _decide, FAST, kind="state"),
    "note": Step("Note", _note, FAST, kind="state"),
}


@flow
async def planned_flow(key: str, score: int) -> dict[str, Any]:
    plan = [
        PlannedStep("s1", "score", {"score": score}),
        PlannedStep("s2", "decide", {"threshold": 50}, next={"high": "s3", "low": "s4"}),
        PlannedStep("s3", "note", {"verdict": "approved"}, terminal=True),
        PlannedStep("s4", "note", {"verdict": "rejected"}, terminal=True),
    ]
    async with StepRun.open() as steps:
        result = await steps.plan(plan, REGISTRY, {"key": key})
        return {"ran": result.ran, "verdict": result.context["verdict"]}


@pytest.mark.parametrize(
    ("score", "ran", "verdict"),
    [(80, ["s1", "s2", "s3"], "approved"), (20, ["s1", "s2", "s4"], "rejected")],
)
def test_a_plan_from_data_branches_on_a_step_output(
    score: int, ran: list[str], verdict: str
) -> None:
    key = fresh()

    assert run(planned_flow(key, score)) == {"ran": ran, "verdict": verdict}


def test_a_plan_naming_a_step_the_registry_lacks_is_refused_before_any_step_runs() -> None:
    key = fresh()

    @flow
    async def bad(key: str) -> None:
        async with StepRun.open() as steps:
            await steps.plan(
                [PlannedStep("s1", "score", {"score": 1}), PlannedStep("s2", "nope")],
                REGISTRY,
                {"key": key},
            )

    state = run(bad(key, return_state=True))
    assert state.is_failed()
    assert "unknown steps: nope" in state.message
    assert CALLS[key] == Counter()


# ---- batches ------------------------------------------------------------------------
async def _item(run: ItemRun, item: dict[str, Any]) -> str:
    key, name = item["key"], item["name"]
    if name == "broken":
        raise NotFound(f"{name} does not exist")
    if name == "flaky" and CALLS[key]["flaky-failures"] < 2:
        CALLS[key]["flaky-failures"] += 1
        raise UpstreamUnavailable("503")
    return await run(CREATE, key, name)


@flow
async def batch_flow(key: str, names: list[str]) -> list[dict[str, Any]]:
    batch: Batch[dict[str, Any], str] = Batch(
        "MakeThing", _item, policy=FAST, max_concurrency=2, item_id=lambda i: i["name"]
    )
    outcomes = await batch.run(
        [{"key": key, "name": n} for n in names], progress_key=f"things-{key}"
    )
    return [
        {
            "id": o.item_id,
            "ok": o.ok,
            "result": o.result,
            "code": o.error_code,
            "retries": o.retries,
        }
        for o in outcomes
    ]


def test_a_batch_runs_every_item_and_reports_each_outcome_in_order() -> None:
    key = fresh()

    outcomes = run(batch_flow(key, ["a", "broken", "flaky", "b"]))

    assert outcomes == [
        {"id": "a", "ok": True, "result": "a", "code": None, "retries": 0},
        {"id": "broken", "ok": False, "result": None, "code": "not_found", "retries": 0},
        {"id": "flaky", "ok": True, "result": "flaky", "code": None, "retries": 2},
        {"id": "b", "ok": True, "result": "b", "code": None, "retries": 0},
    ]
    assert MADE[key] == {"a", "flaky", "b"}
