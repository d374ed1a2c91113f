"""The ControlPlane block against a real control-plane-api over HTTP: each method, the
error contract (service codes rebuilt as core.errors classes), the internal token, and
transport failures translated once (no httpx exception escapes)."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from blocks.models import StoredSecret
from blocks.platform.control_plane import CompensationList, ControlPlane, event_id_for
from blocks.platform.domain import (
    Aggregate,
    ApplicationStatus,
    EnvironmentStatus,
    EventName,
    EventResult,
    SecretStatus,
)
from core import errors
from core.internal_auth import INTERNAL_TOKEN_HEADER
from services.platform.control_plane.app import create_app
from services.platform.control_plane.settings import ControlPlaneSettings
from tests.services.platform.control_plane.launchers import RecordingLauncher
from tests.services.platform.control_plane.live import LiveServer

TOKEN = "internal-t0ken"
STORED = StoredSecret(backend="vault", path="secret/data/harbor-ci", version=2)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    settings = ControlPlaneSettings(
        DATABASE_URL=f"sqlite:///{tmp_path / 'cp.db'}", INTERNAL_AUTH_TOKEN=SecretStr(TOKEN)
    )
    with LiveServer(create_app(settings, launcher=RecordingLauncher())) as live:
        with httpx.Client(base_url=live.url) as http:
            # Public API: what a platform user did before any workflow ran.
            http.post("/api/v1/applications", json={"name": "payments", "team": "pay"})
            http.post(
                "/api/v1/secrets",
                json={"id": "harbor-ci", "provider": "harbor-robot", "provider_ref": "ci"},
            )
        yield live


@pytest.fixture
def cp(server: LiveServer) -> ControlPlane:
    return ControlPlane(url=server.url, internal_token=SecretStr(TOKEN), timeout_seconds=5)


def test_onboarding_and_provisioning_calls(cp: ControlPlane, server: LiveServer) -> None:
    app = cp.get_application("payments")
    assert (app.id, app.team, app.status) == ("payments", "pay", ApplicationStatus.REGISTERED)

    cp.transition_application("payments", ApplicationStatus.ONBOARDING, flow_run_id="run-1")
    done = cp.transition_application(
        "payments", ApplicationStatus.ONBOARDED, flow_run_id="run-1", reason="ok " * 300
    )
    assert done.status is ApplicationStatus.ONBOARDED
    assert done.last_flow_run_id == "run-1"
    assert done.status_reason is not None and len(done.status_reason) <= 500

    with httpx.Client(base_url=server.url) as http:
        http.post("/api/v1/applications/payments/environments", json={"name": "dev"})
    env = cp.get_environment("payments-dev")
    assert (env.repository, env.secrets) == ("appenv-payments-dev", ["app-config"])
    moved = cp.transition_environment(
        "payments-dev", EnvironmentStatus.PROVISIONING, flow_run_id="run-2"
    )
    assert moved.status is EnvironmentStatus.PROVISIONING


def test_rotation_calls(cp: ControlPlane) -> None:
    assert [s.id for s in cp.list_secrets_due()] == ["harbor-ci"]
    locked = cp.acquire_secret_lock("harbor-ci", "run-r")
    assert locked.lock_holder == "run-r"
    cp.transition_secret("harbor-ci", SecretStatus.ROTATING, flow_run_id="run-r")
    rotated_at = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
    secret = cp.record_rotation(
        "harbor-ci", flow_run_id="run-r", stored=STORED, rotated_at=rotated_at
    )
    assert secret.stored == STORED
    assert secret.status is SecretStatus.ACTIVE
    assert secret.last_rotated_at == rotated_at
    released = cp.release_secret_lock("harbor-ci", "run-r")
    assert released.lock_holder is None
    assert cp.list_secrets_due(now=rotated_at) == []
    assert cp.get_secret("harbor-ci").bindings == []


def test_events_recorded_by_a_run_are_idempotent_across_retries(cp: ControlPlane) -> None:
    def record() -> Any:
        return cp.record_event(
            EventName.APPLICATION_ONBOARDING_COMPLETED,
            aggregate=Aggregate.APPLICATION,
            aggregate_id="payments",
            payload={"repository": "appenv-payments-dev"},
            flow_run_id="run-1",
        )

    first, retried = record(), record()
    assert first == retried
    assert first.id == event_id_for("run-1", first.name, "payments")
    assert first.result is EventResult.SUCCESS

    report = cp.report_workflow_run(
        "ApplicationOnboarding",
        flow_run_id="run-1",
        result="success",
        duration_seconds=12.5,
        retries=1,
    )
    assert (report.workflow, report.retries) == ("ApplicationOnboarding", 1)


def test_compensation_log_calls(cp: ControlPlane) -> None:
    run = "0b9c3f4e-51c2-4a57-9c55-2f1d6c1e0b7d"

    def record(key: str, step: str, undo: str, **arguments: Any) -> Any:
        return cp.record_compensation(run, key=key, step=step, undo=undo, arguments=arguments)

    repository = record(
        "0:MaterializeRepositories:ab",
        "MaterializeRepositories",
        "DeleteRepository",
        name="appenv-payments-dev",
    )
    retried = record("0:MaterializeRepositories:ab", "MaterializeRepositories", "Other")
    secrets = record("0:ProvisionSecrets:cd", "ProvisionSecrets", "DeleteSecrets", names=["a"])
    assert retried == repository
    assert (repository.flow_run_id, repository.undo) == (run, "DeleteRepository")
    assert repository.arguments == {"name": "appenv-payments-dev"}
    assert (repository.done, repository.error, repository.done_at) == (False, None, None)

    log = cp.list_compensations(run)
    assert [e.id for e in log.entries] == [repository.id, secrets.id]
    assert log.generation == 0

    failed = cp.settle_compensation(run, secrets.id, error="vault answered 503 " * 50)
    assert not failed.done
    assert failed.error is not None and failed.error.startswith("vault answered 503")
    assert len(failed.error) <= 500
    done = cp.settle_compensation(run, secrets.id)
    assert (done.done, done.error) == (True, None)
    assert done.done_at is not None
    assert cp.settle_compensation(run, secrets.id, error="late") == done
    assert cp.list_compensations(run).generation == 1
    assert cp.list_compensations(run).entries == [repository, done]

    assert cp.list_compensations("run-2") == CompensationList(entries=[], generation=0)
    with pytest.raises(errors.NotFound):  # not run-2's entry
        cp.settle_compensation("run-2", repository.id)


Call = Callable[[ControlPlane], object]
CONTRACT: list[tuple[str, Call, type[errors.DomainError]]] = [
    ("unknown application", lambda cp: cp.get_application("nope"), errors.NotFound),
    ("unknown secret", lambda cp: cp.acquire_secret_lock("nope", "run-1"), errors.NotFound),
    (
        "illegal transition",
        lambda cp: cp.transition_application("payments", ApplicationStatus.ONBOARDED),
        errors.IllegalTransition,
    ),
    (
        "rotation without the lock",
        lambda cp: cp.record_rotation("harbor-ci", flow_run_id="run-1", stored=STORED),
        errors.PreconditionFailed,
    ),
    ("bad holder", lambda cp: cp.acquire_secret_lock("harbor-ci", "not a run id"),
     errors.InvalidInput),
    ("unknown workflow", lambda cp: cp.report_workflow_run(
        "Nope", flow_run_id="r", result="success", duration_seconds=1), errors.InvalidInput),
    ("unknown compensation", lambda cp: cp.settle_compensation(
        "run-1", "8a1f3f4e-51c2-4a57-9c55-2f1d6c1e0b7d"), errors.NotFound),
    ("malformed compensation id", lambda cp: cp.settle_compensation("run-1", "42"),
     errors.InvalidInput),
    ("credential in compensation arguments", lambda cp: cp.record_compensation(
        "run-1", key="0:S:1", step="ProvisionSecrets", undo="DeleteSecrets",
        arguments={"robot": {"token": "t"}}), errors.InvalidInput),
    ("undo step not CamelCase", lambda cp: cp.record_compensation(
        "run-1", key="0:S:1", step="ProvisionSecrets", undo="delete_secrets", arguments={}),
     errors.InvalidInput),
    ("run id with a query in it", lambda cp: cp.list_compensations("run-1?limit=1"),
     errors.InvalidInput),
    ("run id with a slash in it", lambda cp: cp.list_compensations("run-1/2"), errors.NotFound),
    ("empty undo error", lambda cp: cp.settle_compensation(
        "run-1", "8a1f3f4e-51c2-4a57-9c55-2f1d6c1e0b7d", error=""), errors.InvalidInput),
]  # fmt: skip


@pytest.mark.parametrize("case, call, error", CONTRACT, ids=[c[0] for c in CONTRACT])
def test_service_errors_come_back_as_their_class(
    cp: ControlPlane, case: str, call: Call, error: type[errors.DomainError]
) -> None:
    with pytest.raises(error) as raised:
        call(cp)
    assert type(raised.value) is error
    assert raised.value.upstream_status == error.http_status
    assert not raised.value.retryable


def test_a_lock_held_by_another_run_is_secret_locked(cp: ControlPlane) -> None:
    cp.acquire_secret_lock("harbor-ci", "run-a")
    with pytest.raises(errors.SecretLocked) as raised:
        cp.acquire_secret_lock("harbor-ci", "run-b")
    assert raised.value.details["lock_holder"] == "run-a"
    assert "lock_expires_at" in raised.value.details
    with pytest.raises(errors.SecretLocked):
        cp.transition_secret("harbor-ci", SecretStatus.ROTATING, flow_run_id="run-b")


def test_every_lock_of_a_run_is_released(cp: ControlPlane) -> None:
    cp.acquire_secret_lock("harbor-ci", "sweep-9")
    assert cp.release_locks_of("sweep-9") == ["harbor-ci"]
    assert cp.get_secret("harbor-ci").lock_holder is None
    assert cp.release_locks_of("sweep-9") == []


@pytest.mark.parametrize("token", [None, "wrong"])
def test_missing_or_wrong_token_is_unauthorized(server: LiveServer, token: str | None) -> None:
    cp = ControlPlane(url=server.url, internal_token=SecretStr(token) if token else None)
    with pytest.raises(errors.Unauthorized):
        cp.get_application("payments")


def test_from_env_reads_url_and_token(server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTROL_PLANE_URL", server.url)
    monkeypatch.setenv("INTERNAL_AUTH_TOKEN", TOKEN)
    cp = ControlPlane.from_env()
    assert cp.get_application("payments").id == "payments"
    assert TOKEN not in repr(cp)
    assert cp.get_client().headers[INTERNAL_TOKEN_HEADER] == TOKEN


def test_no_token_no_header() -> None:
    assert INTERNAL_TOKEN_HEADER not in ControlPlane(url="http://127.0.0.1:1").get_client().headers


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_connection_refused_is_upstream_unavailable() -> None:
    cp = ControlPlane(url=f"http://127.0.0.1:{_closed_port()}")
    with pytest.raises(errors.UpstreamUnavailable) as raised:
        cp.get_application("payments")
    assert raised.value.retryable
    # The vendor exception (it carries the request, headers included) is not attached.
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_no_answer_is_upstream_timeout() -> None:
    # A socket that listens but never answers: connect succeeds, the read times out.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        cp = ControlPlane(url=f"http://127.0.0.1:{silent.getsockname()[1]}", timeout_seconds=0.3)
        with pytest.raises(errors.UpstreamTimeout) as raised:
            cp.get_secret("harbor-ci")
    assert raised.value.retryable


@pytest.mark.parametrize(
    "status, error",
    [(502, errors.UpstreamUnavailable), (503, errors.UpstreamUnavailable),
     (404, errors.NotFound), (418, errors.UpstreamRejected)],
)  # fmt: skip
def test_bodies_without_our_error_shape_map_by_status(
    status: int, error: type[errors.DomainError]
) -> None:
    async def proxy_page(request: Any) -> PlainTextResponse:
        return PlainTextResponse("<html>gateway trouble</html>", status_code=status)

    app = Starlette(routes=[Route("/{path:path}", proxy_page, methods=["GET", "POST"])])
    with LiveServer(app) as live, pytest.raises(error) as raised:
        ControlPlane(url=live.url).get_application("payments")
    assert type(raised.value) is error
    assert raised.value.upstream_status == status


def test_block_type_is_registered_under_its_own_slug() -> None:
    assert ControlPlane.get_block_type_slug() == "idp-control-plane"
    assert ControlPlane().url == "http://127.0.0.1:8080"


@pytest.mark.parametrize(
    "status, code, error",
    [(500, "internal_error", errors.UpstreamUnavailable),
     (405, "method_not_allowed", errors.UpstreamRejected),
     (409, "brand_new_conflict", errors.Conflict)],
)  # fmt: skip
def test_codes_this_client_does_not_know_map_by_status(
    status: int, code: str, error: type[errors.DomainError]
) -> None:
    async def answer(request: Any) -> JSONResponse:
        body = {"error": {"code": code, "message": "m", "details": {}}}
        return JSONResponse(body, status_code=status)

    app = Starlette(routes=[Route("/{path:path}", answer, methods=["GET"])])
    with LiveServer(app) as live, pytest.raises(error) as raised:
        ControlPlane(url=live.url).get_application("payments")
    assert type(raised.value) is error
    assert raised.value.details["code"] == code
