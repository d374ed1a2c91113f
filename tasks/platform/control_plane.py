"""Control-plane steps: read and move domain state, record events, report run outcomes.

Every step here is a ``state`` step: never cached (a retried flow run must read the state
again and move the aggregate back to "in progress" before the cached provider steps
replay) and safe to repeat: a transition to the status the aggregate already has is a
no-op, an event is recorded once per event id, an outcome once per run attempt.

Each domain event is recorded in the control plane (the system of record, which counts
``domain_events_total``) and then emitted as a Prefect event with the same id, so
automations and the UI see it; the resource is ``idp.<aggregate>.<id>``.
"""

from __future__ import annotations

import uuid
from typing import Any

from prefect.events import emit_event
from pydantic import BaseModel, ConfigDict, Field

from blocks.platform.control_plane import (
    ApplicationState,
    ControlPlane,
    EnvironmentState,
    SecretState,
)
from blocks.platform.domain import (
    Aggregate,
    ApplicationStatus,
    EnvironmentStatus,
    EventName,
    EventResult,
    check_transition,
)
from core.steps import Step
from tasks.platform.calls import in_thread
from tasks.platform.policies import CONTROL_PLANE


class DomainEventSpec(BaseModel):
    """A domain event a run is about to record (its id makes recording it idempotent)."""

    model_config = ConfigDict(frozen=True)

    id: uuid.UUID
    name: EventName
    aggregate: Aggregate
    aggregate_id: str
    result: EventResult = EventResult.SUCCESS
    payload: dict[str, Any] = Field(default_factory=dict, description="Facts; never a secret")
    flow_run_id: str | None = None

    @property
    def resource_id(self) -> str:
        return f"idp.{self.aggregate.value}.{self.aggregate_id}"


class WorkflowOutcome(BaseModel):
    """What a run reports for ``workflow_run_duration_seconds`` / ``workflow_retries_total``."""

    model_config = ConfigDict(frozen=True)

    workflow: str
    run_key: str = Field(description="Flow-run id, suffixed ':<n>' from the second attempt on")
    succeeded: bool
    duration_seconds: float = Field(ge=0)
    retries: int = Field(ge=0)


# -- applications ------------------------------------------------------------------------
async def validate_application_onboarding(
    control_plane: ControlPlane, application_id: str
) -> ApplicationState:
    """The application exists and may (re)enter onboarding (IllegalTransition otherwise)."""
    application = await in_thread(control_plane.get_application, application_id)
    check_transition(application.status, ApplicationStatus.ONBOARDING)
    return application


async def mark_application(
    control_plane: ControlPlane,
    application_id: str,
    status: ApplicationStatus,
    flow_run_id: str,
    reason: str | None = None,
) -> ApplicationState:
    """The application has ``status`` (the control plane enforces the transition table)."""
    return await in_thread(
        control_plane.transition_application,
        application_id,
        status,
        flow_run_id=flow_run_id,
        reason=reason,
    )


# -- environments ------------------------------------------------------------------------
async def validate_environment_provisioning(
    control_plane: ControlPlane, environment_id: str
) -> EnvironmentState:
    """The environment exists and may (re)enter provisioning."""
    environment = await in_thread(control_plane.get_environment, environment_id)
    check_transition(environment.status, EnvironmentStatus.PROVISIONING)
    return environment


async def mark_environment(
    control_plane: ControlPlane,
    environment_id: str,
    status: EnvironmentStatus,
    flow_run_id: str,
    reason: str | None = None,
) -> EnvironmentState:
    """The environment has ``status``."""
    return await in_thread(
        control_plane.transition_environment,
        environment_id,
        status,
        flow_run_id=flow_run_id,
        reason=reason,
    )


async def finalize_environment_provisioning(
    control_plane: ControlPlane, environment_id: str, flow_run_id: str
) -> EnvironmentState:
    """Seed 001's last step: tell the control plane the environment is provisioned."""
    return await in_thread(
        control_plane.transition_environment,
        environment_id,
        EnvironmentStatus.PROVISIONED,
        flow_run_id=flow_run_id,
    )


# -- secrets due, events, outcomes ------------------------------------------------------
async def list_secrets_due(control_plane: ControlPlane, limit: int) -> list[SecretState]:
    """Rotatable secrets never rotated or past their interval, oldest first."""
    return await in_thread(control_plane.list_secrets_due, limit=limit)


async def record_domain_event(control_plane: ControlPlane, event: DomainEventSpec) -> None:
    """The event is in the control plane's log (once) and on Prefect's event stream."""
    await in_thread(
        control_plane.record_event,
        event.name,
        aggregate=event.aggregate,
        aggregate_id=event.aggregate_id,
        result=event.result,
        payload=event.payload,
        flow_run_id=event.flow_run_id,
        event_id=event.id,
    )
    emit_event(
        event=event.name.value,
        resource={
            "prefect.resource.id": event.resource_id,
            "prefect.resource.name": event.aggregate_id,
            "idp.aggregate": event.aggregate.value,
        },
        payload={"result": event.result.value, **event.payload},
        id=event.id,
    )


async def report_workflow_run(control_plane: ControlPlane, outcome: WorkflowOutcome) -> None:
    """Duration and retries reach the control plane's ``/metrics`` (once per attempt)."""
    await in_thread(
        control_plane.report_workflow_run,
        outcome.workflow,
        flow_run_id=outcome.run_key,
        result="success" if outcome.succeeded else "failure",
        duration_seconds=outcome.duration_seconds,
        retries=outcome.retries,
    )


def _state(name: str, fn: Any, run_name: str) -> Step[..., Any]:
    return Step(name, fn, CONTROL_PLANE, kind="state", run_name=run_name)


VALIDATE_APPLICATION_ONBOARDING = _state(
    "ValidateApplicationOnboarding", validate_application_onboarding, "Validate[{application_id}]"
)
MARK_APPLICATION = _state(
    "MarkApplication", mark_application, "MarkApplication[{application_id}={status}]"
)
VALIDATE_ENVIRONMENT_PROVISIONING = _state(
    "ValidateApplicationEnvironmentProvisioning",
    validate_environment_provisioning,
    "Validate[{environment_id}]",
)
MARK_ENVIRONMENT = _state(
    "MarkEnvironment", mark_environment, "MarkEnvironment[{environment_id}={status}]"
)
FINALIZE_ENVIRONMENT_PROVISIONING = _state(
    "FinalizeApplicationEnvironmentProvisioning",
    finalize_environment_provisioning,
    "FinalizeApplicationEnvironmentProvisioning[{environment_id}]",
)
LIST_SECRETS_DUE = _state("ListSecretsDue", list_secrets_due, "ListSecretsDue[limit={limit}]")
RECORD_DOMAIN_EVENT = _state(
    "RecordDomainEvent", record_domain_event, "RecordDomainEvent[{event.name}]"
)
REPORT_WORKFLOW_RUN = _state(
    "ReportWorkflowRun", report_workflow_run, "ReportWorkflowRun[{outcome.workflow}]"
)
