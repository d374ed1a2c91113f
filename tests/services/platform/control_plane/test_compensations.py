"""The compensation log of workflow runs (the saga log), on SQLite and PostgreSQL: entries
recorded once per (run, key), also when recorded concurrently; listed in recording order
with the generation (entries done); settled done for good or failed with a reason; bad
input refused naming the field, and nothing recorded."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.services.platform.control_plane.helpers import SQLITE_ONLY, error_code
from tests.services.platform.control_plane.live import LiveServer

RUN = "0b9c3f4e-51c2-4a57-9c55-2f1d6c1e0b7d"
OTHER_RUN = "run-2"
ENTRY = {
    "key": "0:MaterializeRepositories:3f2a9c",
    "step": "MaterializeRepositories",
    "undo": "DeleteRepository",
    "arguments": {"name": "appenv-payments-dev", "labels": ["a", "b"], "private": True},
}


def log_path(run: str = RUN) -> str:
    return f"/internal/v1/workflow-runs/{run}/compensations"


def record(client: TestClient, run: str = RUN, **change: Any) -> httpx.Response:
    return client.post(log_path(run), json={**ENTRY, **change})


def settle(client: TestClient, entry_id: str, error: str | None = None, run: str = RUN) -> Any:
    return client.post(f"{log_path(run)}/{entry_id}/settle", json={"error": error})


def listing(client: TestClient, run: str = RUN) -> Any:
    response = client.get(log_path(run))
    assert response.status_code == 200, response.text
    return response.json()


def fields(response: httpx.Response) -> list[tuple[str, str]]:
    assert response.status_code == 422, response.text
    assert error_code(response) == "invalid_input"
    found = response.json()["error"]["details"]["fields"]
    return [(f["location"], f["field"]) for f in found]


def test_an_entry_is_recorded_once_per_key(client: TestClient) -> None:
    first = record(client)
    again = record(client)
    # Same key, other content: still a no-op that answers the entry as first recorded.
    changed = record(client, undo="ArchiveRepository", arguments={"name": "other"})

    assert first.status_code == 201, first.text
    assert (again.status_code, changed.status_code) == (200, 200)
    assert again.json() == first.json() == changed.json()
    entry = first.json()
    uuid.UUID(entry["id"])
    assert {k: entry[k] for k in ENTRY} == ENTRY
    assert (entry["flow_run_id"], entry["done"], entry["error"], entry["done_at"]) == (
        RUN,
        False,
        None,
        None,
    )
    assert listing(client)["count"] == 1


def test_the_same_key_in_another_run_is_another_entry(client: TestClient) -> None:
    mine, theirs = record(client), record(client, run=OTHER_RUN)
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.json()["id"] != theirs.json()["id"]
    assert [e["id"] for e in listing(client)["data"]] == [mine.json()["id"]]
    assert [e["id"] for e in listing(client, OTHER_RUN)["data"]] == [theirs.json()["id"]]


def test_entries_are_listed_in_recording_order(client: TestClient) -> None:
    # Keys and names sort otherwise than they were recorded.
    keys = ["0:ProvisionSecrets:c3", "0:ApplyBranchProtection:b2", "0:CreateSecretBindings:a1"]
    ids = [record(client, key=key, step=key.split(":")[1]).json()["id"] for key in keys]
    record(client, run=OTHER_RUN, key="0:Zeta:00")
    record(client, key=keys[0])  # recorded before: does not move

    page = listing(client)
    assert [e["id"] for e in page["data"]] == ids
    assert [e["key"] for e in page["data"]] == keys
    assert (page["count"], page["generation"]) == (3, 0)


def test_an_unknown_run_has_an_empty_log(client: TestClient) -> None:
    assert listing(client, "never-ran") == {"data": [], "count": 0, "generation": 0}


def test_generation_counts_the_entries_done(client: TestClient) -> None:
    ids = [record(client, key=f"0:Step:{n}").json()["id"] for n in range(3)]
    generations = [listing(client)["generation"]]
    settle(client, ids[2])
    generations.append(listing(client)["generation"])
    settle(client, ids[1], "harbor answered 503")  # failed: not done
    generations.append(listing(client)["generation"])
    settle(client, ids[2])  # again: still one
    generations.append(listing(client)["generation"])
    settle(client, ids[1])
    generations.append(listing(client)["generation"])
    assert generations == [0, 1, 1, 1, 2]
    assert [e["done"] for e in listing(client)["data"]] == [False, True, True]


def test_settling_done_is_for_good(client: TestClient) -> None:
    entry_id = record(client).json()["id"]

    done = settle(client, entry_id)
    assert done.status_code == 200, done.text
    assert (done.json()["done"], done.json()["error"]) == (True, None)
    assert done.json()["done_at"] is not None

    again = settle(client, entry_id)
    late_failure = settle(client, entry_id, "a late report of a failed attempt")
    assert (again.status_code, late_failure.status_code) == (200, 200)
    assert again.json() == late_failure.json() == done.json()
    assert listing(client)["data"] == [done.json()]


def test_a_failed_attempt_keeps_its_reason_until_undone(client: TestClient) -> None:
    entry_id = record(client).json()["id"]

    first = settle(client, entry_id, "github answered 502")
    second = settle(client, entry_id, "github answered 503")
    assert first.status_code == 200, first.text
    assert (first.json()["done"], first.json()["error"]) == (False, "github answered 502")
    assert (second.json()["done"], second.json()["error"]) == (False, "github answered 503")
    assert second.json()["done_at"] is None

    undone = settle(client, entry_id)
    # The last attempt succeeded: no reason left.
    assert (undone.json()["done"], undone.json()["error"]) == (True, None)


def test_settling_an_unknown_entry_or_another_runs_is_404(client: TestClient) -> None:
    mine = record(client).json()
    theirs = record(client, run=OTHER_RUN).json()

    answers = [
        settle(client, str(uuid.uuid4())),
        settle(client, theirs["id"]),  # through my run's log
        settle(client, mine["id"], run=OTHER_RUN),  # through another run's log
        settle(client, mine["id"], run="never-ran"),
    ]
    assert [(a.status_code, error_code(a)) for a in answers] == [(404, "not_found")] * 4
    assert listing(client)["data"] == [mine]
    assert listing(client, OTHER_RUN)["data"] == [theirs]


def _concurrently(
    server: LiveServer, count: int, call: Callable[[httpx.Client, int], httpx.Response]
) -> list[Any]:
    """``count`` threads, each with its own connection, sending at once."""
    barrier = threading.Barrier(count)
    answers: list[Any] = [None] * count

    def worker(index: int, client: httpx.Client) -> None:
        barrier.wait()
        answers[index] = call(client, index)

    clients = [httpx.Client(base_url=server.url, timeout=60) for _ in range(count)]
    try:
        for client in clients:  # connect first, so only the requests race
            assert client.get("/health").status_code == 200
        threads = [
            threading.Thread(target=worker, args=(i, client)) for i, client in enumerate(clients)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for client in clients:
            client.close()
    return answers


@pytest.fixture
def live(app: FastAPI) -> Iterator[LiveServer]:
    with LiveServer(app) as server:
        yield server


def test_concurrent_records_of_one_key_keep_one_entry(live: LiveServer) -> None:
    threads = 12
    answers = _concurrently(live, threads, lambda client, _: client.post(log_path(), json=ENTRY))

    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] * (threads - 1) + [201], [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    with httpx.Client(base_url=live.url) as client:
        page = client.get(log_path()).json()
    assert page["count"] == 1
    assert page["data"][0]["id"] == answers[0].json()["id"]


def test_concurrent_records_of_many_keys_keep_each_once(live: LiveServer) -> None:
    threads = 12

    def call(client: httpx.Client, index: int) -> httpx.Response:
        return client.post(log_path(), json={**ENTRY, "key": f"0:Step:{index % 4}"})

    answers = _concurrently(live, threads, call)
    assert sorted(a.status_code for a in answers) == [200] * (threads - 4) + [201] * 4
    with httpx.Client(base_url=live.url) as client:
        page = client.get(log_path()).json()
    assert sorted(e["key"] for e in page["data"]) == [f"0:Step:{n}" for n in range(4)]


def test_a_failure_reported_with_a_success_never_undoes_the_success(live: LiveServer) -> None:
    with httpx.Client(base_url=live.url) as client:
        entry_id = client.post(log_path(), json=ENTRY).json()["id"]
    threads = 8

    def call(client: httpx.Client, index: int) -> httpx.Response:
        error = None if index == 0 else f"attempt {index} failed"
        return client.post(f"{log_path()}/{entry_id}/settle", json={"error": error})

    answers = _concurrently(live, threads, call)
    assert {a.status_code for a in answers} == {200}
    with httpx.Client(base_url=live.url) as client:
        entry = client.get(log_path()).json()["data"][0]
    assert (entry["done"], entry["error"]) == (True, None)


LONG = "A" + "a" * 64
BAD_ENTRIES: list[tuple[dict[str, Any], str]] = [
    ({"step": "deleteRepository"}, "step"),
    ({"step": "Delete Repository"}, "step"),
    ({"step": "DeleteREPO"}, "step"),
    ({"step": LONG}, "step"),
    ({"undo": ""}, "undo"),
    ({"undo": "delete_repository"}, "undo"),
    ({"key": ""}, "key"),
    ({"key": "k" * 201}, "key"),
    ({"key": "0:Step: spaced"}, "key"),
    ({"key": "0:Step:\u00e9"}, "key"),
    ({"key": 7}, "key"),
    ({"arguments": ["appenv-payments-dev"]}, "arguments"),
    ({"arguments": "name=appenv-payments-dev"}, "arguments"),
    ({"arguments": {"token": "ghp_leaked"}}, "arguments"),
    ({"arguments": {"robot": {"secret_value": "ghp_leaked"}}}, "arguments"),
    ({"arguments": {"items": [{"api_key": "ghp_leaked"}]}}, "arguments"),
    ({"arguments": {"blob": "x" * 16_384}}, "arguments"),
]  # fmt: skip


@pytest.mark.parametrize("change, field", BAD_ENTRIES)
@SQLITE_ONLY
def test_bad_entries_are_422_naming_the_field_and_not_recorded(
    client: TestClient, change: dict[str, Any], field: str
) -> None:
    response = record(client, **change)
    assert fields(response) == [("body", field)]
    assert "ghp_leaked" not in response.text
    assert listing(client)["count"] == 0


@pytest.mark.parametrize("missing", ["key", "step", "undo"])
@SQLITE_ONLY
def test_a_missing_field_is_named(client: TestClient, missing: str) -> None:
    body = {k: v for k, v in ENTRY.items() if k != missing}
    assert fields(client.post(log_path(), json=body)) == [("body", missing)]


@SQLITE_ONLY
def test_arguments_default_to_an_empty_object(client: TestClient) -> None:
    body = {k: v for k, v in ENTRY.items() if k != "arguments"}
    assert client.post(log_path(), json=body).json()["arguments"] == {}


@SQLITE_ONLY
def test_arguments_must_be_json_that_every_database_stores(client: TestClient) -> None:
    deep: Any = "leaf"
    for _ in range(16):  # 17 levels with the arguments object
        deep = [deep]
    nan = '{"key": "0:S:1", "step": "Step", "undo": "Undo", "arguments": {"ratio": NaN}}'
    answers = [
        record(client, arguments={"nested": deep}),
        client.post(log_path(), content=nan, headers={"content-type": "application/json"}),
    ]
    assert [fields(a) for a in answers] == [[("body", "arguments")]] * 2
    assert record(client, arguments={"nested": deep[0]}).status_code == 201  # 16 levels


@pytest.mark.parametrize(
    "run",
    ["not a run", "r" * 65, "run%3F1", "run%0A"],
)
@SQLITE_ONLY
def test_a_bad_run_id_is_422_naming_it(client: TestClient, run: str) -> None:
    entry_id = record(client).json()["id"]
    answers = [
        client.post(log_path(run), json=ENTRY),
        client.get(log_path(run)),
        client.post(f"{log_path(run)}/{entry_id}/settle", json={"error": None}),
    ]
    assert [fields(a) for a in answers] == [[("path", "flow_run_id")]] * 3


@pytest.mark.parametrize(
    "body, field",
    [({"error": ""}, "error"), ({"error": "e" * 501}, "error"), ({"error": 5}, "error")],
)
@SQLITE_ONLY
def test_bad_settlements_are_422_and_change_nothing(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    entry_id = record(client).json()["id"]
    response = client.post(f"{log_path()}/{entry_id}/settle", json=body)
    assert fields(response) == [("body", field)]
    assert listing(client)["data"][0]["error"] is None


@SQLITE_ONLY
def test_a_malformed_entry_id_is_422_and_an_empty_body_settles_done(client: TestClient) -> None:
    entry_id = record(client).json()["id"]
    assert fields(client.post(f"{log_path()}/42/settle", json={})) == [("path", "entry_id")]
    done = client.post(f"{log_path()}/{entry_id}/settle", json={})
    assert done.json()["done"] is True
