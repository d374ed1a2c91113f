"""The secret lock, recorded rotations and the list of secrets due (internal API)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from services.platform.control_plane.db import make_engine
from services.platform.control_plane.models import Secret
from services.platform.control_plane.models.common import utcnow
from services.platform.control_plane.settings import (
    DEFAULT_SECRET_LOCK_TTL_SECONDS,
    ControlPlaneSettings,
)
from tests.services.platform.control_plane.helpers import (
    SQLITE_ONLY,
    error_code,
    make_client,
    register_secret,
)
from tests.services.platform.control_plane.launchers import RecordingLauncher

DEFAULT_LOCK_TTL = timedelta(seconds=DEFAULT_SECRET_LOCK_TTL_SECONDS)
STORED = {"backend": "vault", "path": "secret/data/harbor-ci", "version": 3}


def lock(client: TestClient, holder: str, secret: str = "harbor-ci") -> httpx.Response:
    return client.post(f"/internal/v1/secrets/{secret}/lock", json={"holder": holder})


def unlock(client: TestClient, holder: str, secret: str = "harbor-ci") -> httpx.Response:
    return client.post(f"/internal/v1/secrets/{secret}/unlock", json={"holder": holder})


def test_lock_is_held_by_one_run_and_reentrant(client: TestClient) -> None:
    register_secret(client, "harbor-ci")
    first = lock(client, "run-a")
    assert first.status_code == 200
    assert first.json()["lock_holder"] == "run-a"
    again = lock(client, "run-a")
    assert again.status_code == 200
    acquired = datetime.fromisoformat(again.json()["lock_acquired_at"])
    assert acquired >= datetime.fromisoformat(first.json()["lock_acquired_at"])  # renewed

    other = lock(client, "run-b")
    assert other.status_code == 409
    assert error_code(other) == "secret_locked"
    assert other.json()["error"]["details"] == {
        "lock_holder": "run-a",
        "lock_expires_at": (acquired + DEFAULT_LOCK_TTL).isoformat(),
    }


def test_releasing_a_lock_you_do_not_hold_changes_nothing(client: TestClient) -> None:
    register_secret(client, "harbor-ci")
    lock(client, "run-a")
    not_mine = unlock(client, "run-b")
    assert not_mine.status_code == 200
    assert not_mine.json()["lock_holder"] == "run-a"

    mine = unlock(client, "run-a")
    assert mine.status_code == 200
    assert mine.json()["lock_holder"] is None
    assert unlock(client, "run-a").status_code == 200  # releasing twice is fine
    assert lock(client, "run-b").json()["lock_holder"] == "run-b"


@pytest.mark.parametrize("endpoint", ["lock", "unlock", "rotations"])
def test_unknown_secret_is_404(client: TestClient, endpoint: str) -> None:
    body = {"holder": "run-a", "flow_run_id": "run-a", "stored": STORED}
    response = client.post(f"/internal/v1/secrets/nope/{endpoint}", json=body)
    assert response.status_code == 404
    assert error_code(response) == "not_found"


def test_recording_a_rotation_stores_location_and_schedules_the_next(client: TestClient) -> None:
    register_secret(client, "harbor-ci")  # rotation_interval_seconds=3600
    lock(client, "run-a")
    client.post(
        "/internal/v1/secrets/harbor-ci/transitions",
        json={"status": "rotating", "flow_run_id": "run-a"},
    )
    rotated_at = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    response = client.post(
        "/internal/v1/secrets/harbor-ci/rotations",
        json={"flow_run_id": "run-a", "stored": STORED, "rotated_at": rotated_at.isoformat()},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "active"
    assert body["stored"] == STORED
    assert datetime.fromisoformat(body["last_rotated_at"]) == rotated_at
    assert datetime.fromisoformat(body["next_rotation_at"]) == rotated_at + timedelta(hours=1)
    assert body["lock_holder"] == "run-a"  # the run releases it itself, last


def test_rotation_with_bindings_left_behind_is_recorded_as_pending(client: TestClient) -> None:
    register_secret(client, "harbor-ci")
    lock(client, "run-a")
    client.post(
        "/internal/v1/secrets/harbor-ci/transitions",
        json={"status": "rotating", "flow_run_id": "run-a"},
    )
    response = client.post(
        "/internal/v1/secrets/harbor-ci/rotations",
        json={"flow_run_id": "run-a", "stored": STORED, "status": "rotated_pending_bindings"},
    )
    assert response.json()["status"] == "rotated_pending_bindings"


def test_only_the_lock_holder_records_a_rotation(client: TestClient) -> None:
    register_secret(client, "harbor-ci")
    unlocked = client.post(
        "/internal/v1/secrets/harbor-ci/rotations", json={"flow_run_id": "run-a", "stored": STORED}
    )
    assert unlocked.status_code == 412
    assert error_code(unlocked) == "precondition_failed"

    lock(client, "run-a")
    intruder = client.post(
        "/internal/v1/secrets/harbor-ci/rotations", json={"flow_run_id": "run-b", "stored": STORED}
    )
    assert intruder.status_code == 409
    assert error_code(intruder) == "secret_locked"
    assert client.get("/internal/v1/secrets/harbor-ci").json()["stored"] is None


@pytest.mark.parametrize(
    "body, field",
    [
        ({"flow_run_id": "run-a"}, "stored"),
        ({"flow_run_id": "run-a", "stored": {"backend": "vault", "path": "p"}}, "stored.version"),
        ({"flow_run_id": "run-a", "stored": STORED, "status": "rotating!"}, "status"),
        ({"flow_run_id": "run a", "stored": STORED}, "flow_run_id"),
    ],
)
@SQLITE_ONLY
def test_bad_rotation_records_are_422(client: TestClient, body: dict, field: str) -> None:
    register_secret(client, "harbor-ci")
    lock(client, "run-a")
    response = client.post("/internal/v1/secrets/harbor-ci/rotations", json=body)
    assert response.status_code == 422
    assert [f["field"] for f in response.json()["error"]["details"]["fields"]] == [field]


def _rotate(client: TestClient, secret: str, at: datetime) -> None:
    lock(client, "run-r", secret)
    response = client.post(
        f"/internal/v1/secrets/{secret}/rotations",
        json={"flow_run_id": "run-r", "stored": STORED, "rotated_at": at.isoformat()},
    )
    assert response.status_code == 200, response.text
    unlock(client, "run-r", secret)


def test_due_lists_never_rotated_then_overdue_and_skips_the_rest(client: TestClient) -> None:
    now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    register_secret(client, "fresh")  # interval 1 h
    register_secret(client, "overdue-old")
    register_secret(client, "overdue-new")
    register_secret(client, "never")
    register_secret(client, "manual", rotatable=False)
    _rotate(client, "fresh", now - timedelta(minutes=10))
    _rotate(client, "overdue-old", now - timedelta(hours=5))
    _rotate(client, "overdue-new", now - timedelta(hours=2))

    due = client.get("/internal/v1/rotations/due", params={"now": now.isoformat()}).json()
    assert [s["id"] for s in due["data"]] == ["never", "overdue-old", "overdue-new"]
    limited = client.get(
        "/internal/v1/rotations/due", params={"now": now.isoformat(), "limit": 2}
    ).json()
    assert [s["id"] for s in limited["data"]] == ["never", "overdue-old"]
    assert client.get("/internal/v1/rotations/due", params={"limit": 0}).status_code == 422


def test_every_lock_of_a_run_is_released_at_once(client: TestClient) -> None:
    # A cancelled or crashed sweep holds the locks of the secrets it had in flight.
    for secret in ("s-a", "s-b", "s-c", "s-d"):
        register_secret(client, secret)
    for secret in ("s-c", "s-a", "s-b"):
        assert lock(client, "sweep-1", secret).status_code == 200
    assert lock(client, "run-other", "s-d").status_code == 200

    released = client.post("/internal/v1/locks/release", json={"holder": "sweep-1"})
    assert released.status_code == 200
    assert released.json() == {"holder": "sweep-1", "released": ["s-a", "s-b", "s-c"]}
    holders = {
        s: client.get(f"/internal/v1/secrets/{s}").json()["lock_holder"]
        for s in ("s-a", "s-b", "s-c", "s-d")
    }
    assert holders == {"s-a": None, "s-b": None, "s-c": None, "s-d": "run-other"}
    assert lock(client, "run-next", "s-a").status_code == 200  # rotatable again

    again = client.post("/internal/v1/locks/release", json={"holder": "sweep-1"})
    assert again.json() == {"holder": "sweep-1", "released": []}


@SQLITE_ONLY
def test_releasing_needs_a_holder(client: TestClient) -> None:
    response = client.post("/internal/v1/locks/release", json={})
    assert response.status_code == 422
    assert error_code(response) == "invalid_input"


def age_lock(settings: ControlPlaneSettings, secret_id: str, age: timedelta) -> None:
    """Make the secret's lock look taken ``age`` ago (as if its holder died back then)."""
    engine = make_engine(settings.database_url)
    try:
        with Session(engine) as session:
            secret = session.get(Secret, secret_id)
            assert secret is not None and secret.lock_holder is not None
            secret.lock_acquired_at = utcnow() - age
            session.add(secret)
            session.commit()
    finally:
        engine.dispose()


def test_a_stale_lock_is_taken_over_and_its_old_holder_shut_out(
    client: TestClient, settings: ControlPlaneSettings
) -> None:
    register_secret(client, "harbor-ci")
    lock(client, "run-dead")
    age_lock(settings, "harbor-ci", DEFAULT_LOCK_TTL + timedelta(minutes=1))

    taken = lock(client, "run-b")
    assert taken.status_code == 200, taken.text
    assert taken.json()["lock_holder"] == "run-b"
    assert utcnow() - datetime.fromisoformat(taken.json()["lock_acquired_at"]) < timedelta(
        minutes=1
    )
    # The old holder, should it wake up, can neither take the lock back nor record.
    assert error_code(lock(client, "run-dead")) == "secret_locked"
    late = client.post(
        "/internal/v1/secrets/harbor-ci/rotations",
        json={"flow_run_id": "run-dead", "stored": STORED},
    )
    assert late.status_code == 409
    assert error_code(late) == "secret_locked"
    moved = client.post(
        "/internal/v1/secrets/harbor-ci/transitions",
        json={"status": "rotating", "flow_run_id": "run-dead"},
    )
    assert error_code(moved) == "secret_locked"
    assert unlock(client, "run-dead").json()["lock_holder"] == "run-b"


def test_a_lock_within_its_ttl_is_kept_and_renewing_restarts_it(
    client: TestClient, settings: ControlPlaneSettings
) -> None:
    register_secret(client, "harbor-ci")
    lock(client, "run-a")
    age_lock(settings, "harbor-ci", DEFAULT_LOCK_TTL - timedelta(minutes=1))
    assert error_code(lock(client, "run-b")) == "secret_locked"

    age_lock(settings, "harbor-ci", DEFAULT_LOCK_TTL + timedelta(minutes=1))
    assert lock(client, "run-a").status_code == 200  # the holder renews before anyone else
    assert error_code(lock(client, "run-b")) == "secret_locked"


def test_a_rotation_request_takes_over_a_stale_lock(
    client: TestClient, settings: ControlPlaneSettings, launcher: RecordingLauncher
) -> None:
    register_secret(client, "harbor-ci")
    first = client.post("/api/v1/secrets/harbor-ci/rotations")
    assert first.status_code == 202
    assert client.post("/api/v1/secrets/harbor-ci/rotations").status_code == 409
    # The first run never started (or died and was never recovered).
    age_lock(settings, "harbor-ci", DEFAULT_LOCK_TTL + timedelta(minutes=1))

    second = client.post("/api/v1/secrets/harbor-ci/rotations")
    assert second.status_code == 202, second.text
    assert [launch.flow_run_id for launch in launcher.launches] == [
        first.json()["flow_run_id"],
        second.json()["flow_run_id"],
    ]
    holder = client.get("/api/v1/secrets/harbor-ci").json()["lock_holder"]
    assert holder == second.json()["flow_run_id"]
    stale_run = first.json()["flow_run_id"]
    assert error_code(lock(client, stale_run)) == "secret_locked"


def test_the_ttl_comes_from_the_settings(
    settings: ControlPlaneSettings, launcher: RecordingLauncher
) -> None:
    short = settings.model_copy(update={"IDP_SECRET_LOCK_TTL_SECONDS": 60.0})
    with make_client(short, launcher) as client:
        register_secret(client, "harbor-ci")
        lock(client, "run-a")
        age_lock(short, "harbor-ci", timedelta(seconds=30))
        refused = lock(client, "run-b")
        assert error_code(refused) == "secret_locked"
        expires = datetime.fromisoformat(refused.json()["error"]["details"]["lock_expires_at"])
        assert timedelta(seconds=20) < expires - utcnow() <= timedelta(seconds=30)

        age_lock(short, "harbor-ci", timedelta(seconds=90))
        assert lock(client, "run-b").json()["lock_holder"] == "run-b"
