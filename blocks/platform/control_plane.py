"""The control plane as a Prefect block: how workflows read and change domain state.

Every method calls one ``/internal/v1`` endpoint of control-plane-api and returns a
pydantic model. Errors come back as the ``core.errors`` class the service named in its
body (``IllegalTransition``, ``SecretLocked``, ``NotFound``, ...); transport failures are
translated once, here: cannot connect → ``UpstreamUnavailable``, timeout →
``UpstreamTimeout`` (both retryable).

    from blocks.platform.control_plane import ControlPlane
    cp = ControlPlane.load("default")          # or ControlPlane.from_env()
    app = cp.get_application("payments")
    cp.transition_application("payments", ApplicationStatus.ONBOARDING, flow_run_id=run_id)
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from prefect.blocks.core import Block
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr

from blocks._http import (
    ClientSlot,
    error_from_service,
    parse_json,
    parse_model,
    shared_ssl_context,
    translate_http_errors,
)
from blocks.models import BindingSpec, StoredSecret
from blocks.platform.domain import (
    Aggregate,
    ApplicationStatus,
    EnvironmentStatus,
    EventName,
    EventResult,
    SecretStatus,
)
from blocks.platform.settings import DEFAULT_CONTROL_PLANE_URL, ControlPlaneClientSettings
from core.errors import (
    shorten,
)
from core.internal_auth import internal_auth_headers

INTERNAL_PREFIX = "/internal/v1"
# Events recorded by a run get ids derived from (run, event, aggregate): a retried task
# records the same event again and the service keeps one.
EVENT_NAMESPACE = uuid.UUID("8a1f3f4e-51c2-4a57-9c55-2f1d6c1e0b7d")
M = TypeVar("M", bound=BaseModel)


class _View(BaseModel):
    # Unknown fields are ignored so the service can add some without breaking flows.
    model_config = ConfigDict(extra="ignore", frozen=True)


class ApplicationState(_View):
    id: str
    name: str
    team: str
    description: str = ""
    status: ApplicationStatus
    status_reason: str | None = None
    last_flow_run_id: str | None = None
    last_flow_run_url: str | None = None
    created_at: datetime
    updated_at: datetime


class EnvironmentState(_View):
    id: str
    application_id: str
    name: str
    repository: str
    secrets: list[str]
    status: EnvironmentStatus
    status_reason: str | None = None
    last_flow_run_id: str | None = None
    last_flow_run_url: str | None = None
    created_at: datetime
    updated_at: datetime


class LocksReleased(_View):
    holder: str
    released: list[str]


class SecretState(_View):
    id: str
    provider: str
    provider_ref: str
    project: str | None = None
    rotatable: bool
    rotation_interval_seconds: int
    status: SecretStatus
    status_reason: str | None = None
    last_rotated_at: datetime | None = None
    next_rotation_at: datetime | None = None
    stored: StoredSecret | None = None
    lock_holder: str | None = None
    lock_acquired_at: datetime | None = None
    last_flow_run_id: str | None = None
    last_flow_run_url: str | None = None
    bindings: list[BindingSpec] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime


class DomainEventRecord(_View):
    id: uuid.UUID
    name: str
    aggregate: Aggregate
    aggregate_id: str
    result: EventResult
    payload: dict[str, Any] = Field(default_factory=dict)
    flow_run_id: str | None = None
    occurred_at: datetime
    recorded_at: datetime


class WorkflowRunRecord(_View):
    workflow: str
    flow_run_id: str
    result: str
    duration_seconds: float
    retries: int
    reported_at: datetime


class CompensationRecord(_View):
    """One entry of a run's compensation log: the undo action of a step it completed."""

    id: str
    flow_run_id: str
    key: str
    step: str
    undo: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    done: bool
    error: str | None = None
    recorded_at: datetime
    done_at: datetime | None = None


class CompensationList(_View):
    """A run's compensation log in recording order; ``generation`` = entries done."""

    entries: list[CompensationRecord]
    generation: int


def event_id_for(flow_run_id: str, name: str, aggregate_id: str) -> uuid.UUID:
    """The id a run gives an event, stable across retries of the step that records it."""
    return uuid.uuid5(EVENT_NAMESPACE, f"{flow_run_id}:{name}:{aggregate_id}")


class ControlPlane(Block):
    """Client of control-plane-api's internal API (``/internal/v1``).

    ``ControlPlane.load("default")`` in a flow, or ``ControlPlane.from_env()`` to build
    one from ``CONTROL_PLANE_URL`` and ``INTERNAL_AUTH_TOKEN``.
    """

    _block_type_name = "IDP Control Plane"
    _description = "Domain state of the IDP: read aggregates, move statuses, lock secrets."

    url: str = Field(default=DEFAULT_CONTROL_PLANE_URL, description="Base URL of control-plane-api")
    internal_token: SecretStr | None = Field(
        default=None, description="Sent as X-Internal-Token when set (INTERNAL_AUTH_TOKEN)"
    )
    timeout_seconds: float = Field(default=10.0, gt=0, description="Timeout of one call")
    _slot: ClientSlot = PrivateAttr(default_factory=ClientSlot)

    @classmethod
    def from_env(cls, settings: ControlPlaneClientSettings | None = None) -> ControlPlane:
        """Build from CONTROL_PLANE_URL and INTERNAL_AUTH_TOKEN."""
        settings = settings or ControlPlaneClientSettings.current()
        return cls(url=settings.CONTROL_PLANE_URL, internal_token=settings.INTERNAL_AUTH_TOKEN)

    def get_client(self) -> httpx.Client:
        """This block's shared client on ``<url>/internal/v1`` (built once, keep-alive)."""
        return self._slot.get(self._build_client, lambda c: c.is_closed)

    def close(self) -> None:
        self._slot.close(lambda c: c.close())

    def _build_client(self) -> httpx.Client:
        headers = internal_auth_headers(self.internal_token)
        return httpx.Client(
            base_url=self.url.rstrip("/") + INTERNAL_PREFIX,
            headers=headers,
            timeout=self.timeout_seconds,
            verify=shared_ssl_context(),
        )

    def _call(
        self,
        model: type[M],
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> M:
        with translate_http_errors(f"control plane {method} {path}"):
            response = self.get_client().request(method, path, json=json, params=params)
        if response.status_code >= 400:
            raise error_from_service(response, "control plane")
        return parse_model(model, parse_json(response, "control plane"), "control plane", path)

    # Reads -------------------------------------------------------------------------
    def get_application(self, application_id: str) -> ApplicationState:
        return self._call(ApplicationState, "GET", f"/applications/{application_id}")

    def get_environment(self, environment_id: str) -> EnvironmentState:
        return self._call(EnvironmentState, "GET", f"/environments/{environment_id}")

    def get_secret(self, secret_id: str) -> SecretState:
        return self._call(SecretState, "GET", f"/secrets/{secret_id}")

    def list_secrets_due(
        self, *, limit: int = 100, now: datetime | None = None
    ) -> list[SecretState]:
        """Rotatable secrets never rotated or whose interval elapsed, oldest first."""
        params: dict[str, Any] = {"limit": limit}
        if now is not None:
            params["now"] = now.isoformat()
        return self._call(_SecretPage, "GET", "/rotations/due", params=params).data

    # Status transitions (409 IllegalTransition when the move is not allowed) ---------
    def transition_application(
        self,
        application_id: str,
        status: ApplicationStatus,
        *,
        flow_run_id: str | None = None,
        reason: str | None = None,
    ) -> ApplicationState:
        body = _transition(status, flow_run_id, reason)
        path = f"/applications/{application_id}/transitions"
        return self._call(ApplicationState, "POST", path, json=body)

    def transition_environment(
        self,
        environment_id: str,
        status: EnvironmentStatus,
        *,
        flow_run_id: str | None = None,
        reason: str | None = None,
    ) -> EnvironmentState:
        body = _transition(status, flow_run_id, reason)
        path = f"/environments/{environment_id}/transitions"
        return self._call(EnvironmentState, "POST", path, json=body)

    def transition_secret(
        self,
        secret_id: str,
        status: SecretStatus,
        *,
        flow_run_id: str | None = None,
        reason: str | None = None,
    ) -> SecretState:
        """Also ``SecretLocked`` when another run holds the secret's lock."""
        body = _transition(status, flow_run_id, reason)
        return self._call(SecretState, "POST", f"/secrets/{secret_id}/transitions", json=body)

    # Secret lock and rotations -------------------------------------------------------
    def acquire_secret_lock(self, secret_id: str, holder: str) -> SecretState:
        """Hold the rotation lock (again is fine); ``SecretLocked`` if another run has it."""
        return self._call(
            SecretState, "POST", f"/secrets/{secret_id}/lock", json={"holder": holder}
        )

    def release_secret_lock(self, secret_id: str, holder: str) -> SecretState:
        """Release the lock if ``holder`` has it; otherwise nothing changes."""
        path = f"/secrets/{secret_id}/unlock"
        return self._call(SecretState, "POST", path, json={"holder": holder})

    def release_locks_of(self, holder: str) -> list[str]:
        """Release every secret lock ``holder`` has (a run that ended without releasing
        its own); the ids of the secrets freed."""
        return self._call(LocksReleased, "POST", "/locks/release", json={"holder": holder}).released

    def record_rotation(
        self,
        secret_id: str,
        *,
        flow_run_id: str,
        stored: StoredSecret,
        rotated_at: datetime | None = None,
        status: SecretStatus = SecretStatus.ACTIVE,
    ) -> SecretState:
        """Record where the new value is stored (never the value); the run holds the lock."""
        body: dict[str, Any] = {
            "flow_run_id": flow_run_id,
            "stored": stored.model_dump(mode="json"),
            "status": status.value,
        }
        if rotated_at is not None:
            body["rotated_at"] = rotated_at.isoformat()
        return self._call(SecretState, "POST", f"/secrets/{secret_id}/rotations", json=body)

    # Records --------------------------------------------------------------------------
    def record_event(
        self,
        name: EventName | str,
        *,
        aggregate: Aggregate,
        aggregate_id: str,
        result: EventResult = EventResult.SUCCESS,
        payload: Mapping[str, Any] | None = None,
        flow_run_id: str | None = None,
        event_id: uuid.UUID | None = None,
        occurred_at: datetime | None = None,
    ) -> DomainEventRecord:
        """Record a domain event once. Without ``event_id``, a run's event gets a stable id
        (``event_id_for``) so retries do not duplicate it; payloads never hold secrets."""
        name = str(name)
        if event_id is None:
            event_id = (
                event_id_for(flow_run_id, name, aggregate_id) if flow_run_id else uuid.uuid4()
            )
        body: dict[str, Any] = {
            "id": str(event_id),
            "name": name,
            "aggregate": aggregate.value,
            "aggregate_id": aggregate_id,
            "result": result.value,
            "payload": dict(payload or {}),
            "flow_run_id": flow_run_id,
        }
        if occurred_at is not None:
            body["occurred_at"] = occurred_at.isoformat()
        return self._call(DomainEventRecord, "POST", "/events", json=body)

    def report_workflow_run(
        self,
        workflow: str,
        *,
        flow_run_id: str,
        result: str,
        duration_seconds: float,
        retries: int = 0,
    ) -> WorkflowRunRecord:
        """Report a finished run (``result`` success|failure) for the workflow metrics."""
        body = {
            "workflow": workflow,
            "flow_run_id": flow_run_id,
            "result": result,
            "duration_seconds": duration_seconds,
            "retries": retries,
        }
        return self._call(WorkflowRunRecord, "POST", "/workflow-runs", json=body)

    # Compensation log (the saga log) ------------------------------------------------
    def record_compensation(
        self,
        flow_run_id: str,
        *,
        key: str,
        step: str,
        undo: str,
        arguments: Mapping[str, Any],
    ) -> CompensationRecord:
        """Keep the undo action of a completed step once per ``(flow_run_id, key)``: a key
        recorded before changes nothing and returns its entry. ``arguments`` never hold a
        secret (credential-looking keys are refused)."""
        body = {"key": key, "step": step, "undo": undo, "arguments": dict(arguments)}
        return self._call(CompensationRecord, "POST", _compensations(flow_run_id), json=body)

    def list_compensations(self, flow_run_id: str) -> CompensationList:
        """Every entry of the run's log, in recording order, and how many are done."""
        page = self._call(_CompensationPage, "GET", _compensations(flow_run_id))
        return CompensationList(entries=page.data, generation=page.generation)

    def settle_compensation(
        self, flow_run_id: str, entry_id: str, *, error: str | None = None
    ) -> CompensationRecord:
        """Without ``error``: the entry is undone (done for good; settling it again changes
        nothing). With it: the attempt failed, and why (cut to 500 characters). An entry
        that is not the run's is ``NotFound``."""
        cut = shorten(error, 500) if error is not None else None
        path = f"{_compensations(flow_run_id)}/{quote(entry_id, safe='')}/settle"
        return self._call(CompensationRecord, "POST", path, json={"error": cut})


class _SecretPage(_View):
    data: list[SecretState]
    count: int


class _CompensationPage(_View):
    data: list[CompensationRecord]
    count: int
    generation: int


def _compensations(flow_run_id: str) -> str:
    # Quoted: an id holding "/" or "?" must not name another route (it is refused).
    return f"/workflow-runs/{quote(flow_run_id, safe='')}/compensations"


def _transition(status: Any, flow_run_id: str | None, reason: str | None) -> dict[str, Any]:
    # The service keeps 500 characters of reason; cut here rather than be refused.
    cut = shorten(reason, 500) if reason else None
    return {"status": str(status.value), "flow_run_id": flow_run_id, "reason": cut}
