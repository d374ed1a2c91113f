"""Idempotency-Key records live IDP_IDEMPOTENCY_TTL_SECONDS: within it a repeat replays,
after it the key is a new request (and starts a new run), and expired records are pruned
when the app starts."""

from __future__ import annotations

import time
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from services.platform.control_plane.db import make_engine
from services.platform.control_plane.models import IdempotencyRecord
from services.platform.control_plane.models.common import utcnow
from services.platform.control_plane.settings import ControlPlaneSettings
from tests.services.platform.control_plane.helpers import error_code, make_client, register_secret
from tests.services.platform.control_plane.launchers import RecordingLauncher

TTL_SECONDS = 1.0


def short_lived(settings: ControlPlaneSettings) -> ControlPlaneSettings:
    return settings.model_copy(update={"IDP_IDEMPOTENCY_TTL_SECONDS": TTL_SECONDS})


def rotate(client: TestClient, key: str) -> dict:
    response = client.post("/api/v1/secrets/harbor-ci/rotations", headers={"Idempotency-Key": key})
    assert response.status_code == 202, response.text
    body: dict = response.json()
    return body


def release(client: TestClient, run_id: str) -> None:
    response = client.post("/internal/v1/secrets/harbor-ci/unlock", json={"holder": run_id})
    assert response.json()["lock_holder"] is None


def stored_keys(settings: ControlPlaneSettings) -> set[str]:
    engine = make_engine(settings.database_url)
    try:
        with Session(engine) as session:
            return set(session.exec(select(IdempotencyRecord.key)).all())
    finally:
        engine.dispose()


def add_records(settings: ControlPlaneSettings, ages: dict[str, timedelta]) -> None:
    engine = make_engine(settings.database_url)
    try:
        with Session(engine) as session:
            for key, age in ages.items():
                session.add(
                    IdempotencyRecord(
                        key=key, fingerprint="f" * 64, status_code=201, created_at=utcnow() - age
                    )
                )
            session.commit()
    finally:
        engine.dispose()


def test_a_key_reused_after_its_ttl_starts_a_new_run(
    settings: ControlPlaneSettings, launcher: RecordingLauncher
) -> None:
    with make_client(short_lived(settings), launcher) as client:
        register_secret(client, "harbor-ci")
        first = rotate(client, "rotate-harbor-ci")
        replayed = client.post(
            "/api/v1/secrets/harbor-ci/rotations", headers={"Idempotency-Key": "rotate-harbor-ci"}
        )
        assert replayed.headers["Idempotent-Replayed"] == "true"
        assert replayed.json() == first
        release(client, first["flow_run_id"])

        time.sleep(TTL_SECONDS + 0.2)
        second = rotate(client, "rotate-harbor-ci")
        assert second["flow_run_id"] != first["flow_run_id"]  # not Prefect's old run
        assert [launch.flow_run_id for launch in launcher.launches] == [
            first["flow_run_id"],
            second["flow_run_id"],
        ]
        holder = client.get("/api/v1/secrets/harbor-ci").json()["lock_holder"]
        assert holder == second["flow_run_id"]


def test_an_expired_key_may_carry_another_request(
    settings: ControlPlaneSettings, launcher: RecordingLauncher
) -> None:
    with make_client(short_lived(settings), launcher) as client:
        headers = {"Idempotency-Key": "k-1"}
        body = {"name": "payments", "team": "pay"}
        assert client.post("/api/v1/applications", json=body, headers=headers).status_code == 201
        other = {"name": "billing", "team": "pay"}
        refused = client.post("/api/v1/applications", json=other, headers=headers)
        assert error_code(refused) == "invalid_input"

        time.sleep(TTL_SECONDS + 0.2)
        accepted = client.post("/api/v1/applications", json=other, headers=headers)
        assert accepted.status_code == 201, accepted.text
        assert "Idempotent-Replayed" not in accepted.headers


def test_the_app_prunes_expired_records_when_it_starts(
    settings: ControlPlaneSettings, launcher: RecordingLauncher
) -> None:
    day = timedelta(seconds=settings.IDP_IDEMPOTENCY_TTL_SECONDS)
    with make_client(settings, launcher):  # migrates the database
        pass
    add_records(
        settings,
        {
            "old": day + timedelta(minutes=1),
            "older": day * 3,
            "fresh": day - timedelta(minutes=1),
            "new": timedelta(0),
        },
    )
    with make_client(settings, launcher):
        deadline = time.monotonic() + 10
        while stored_keys(settings) != {"fresh", "new"} and time.monotonic() < deadline:
            time.sleep(0.05)
    assert stored_keys(settings) == {"fresh", "new"}
