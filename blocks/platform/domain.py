"""Domain vocabulary shared by flows, blocks and services.

The lifecycle rules live here, in one table per aggregate, so the control plane (which
enforces them) and the workflows (which request transitions) cannot disagree.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated

from pydantic import Field

from core.errors import IllegalTransition

# Names: lowercase slugs, as GitHub, Harbor and Kubernetes all accept them.
SLUG_PATTERN = r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$"
Slug = Annotated[str, Field(pattern=SLUG_PATTERN, min_length=2, max_length=40)]

# Seed 001: the canonical workflow names (CamelCase) and their Prefect flow names.
WORKFLOW_APPLICATION_ONBOARDING = "ApplicationOnboarding"
WORKFLOW_APPENV_PROVISIONING = "ApplicationEnvironmentProvisioning"
WORKFLOW_SECRET_ROTATION = "SecretRotation"
WORKFLOW_SECRET_ROTATION_SWEEP = "SecretRotationSweep"
WORKFLOWS = (
    WORKFLOW_APPLICATION_ONBOARDING,
    WORKFLOW_APPENV_PROVISIONING,
    WORKFLOW_SECRET_ROTATION,
    WORKFLOW_SECRET_ROTATION_SWEEP,
)
# Not a seed workflow: provisions many environments in one run (mass changes, benchmarks),
# with exactly the ApplicationEnvironmentProvisioning steps per environment.
WORKFLOW_BULK_APPENV_PROVISIONING = "BulkEnvironmentProvisioning"
# Every workflow that runs on the platform (and may report its outcome for the metrics).
PLATFORM_WORKFLOWS = (*WORKFLOWS, WORKFLOW_BULK_APPENV_PROVISIONING)


def appenv_repository_name(environment_id: str) -> str:
    """Seed 001: the repository of an application environment is ``appenv-<id>``."""
    return f"appenv-{environment_id}"


class ApplicationStatus(StrEnum):
    REGISTERED = "registered"
    ONBOARDING = "onboarding"
    ONBOARDED = "onboarded"
    ONBOARDING_FAILED = "onboarding_failed"


class EnvironmentStatus(StrEnum):
    REQUESTED = "requested"
    PROVISIONING = "provisioning"
    PROVISIONED = "provisioned"
    PROVISIONING_FAILED = "provisioning_failed"


class SecretStatus(StrEnum):
    ACTIVE = "active"
    ROTATING = "rotating"
    # The provider issued a new value and it is stored, but not every binding has it yet.
    ROTATED_PENDING_BINDINGS = "rotated_pending_bindings"
    ROTATION_FAILED = "rotation_failed"


# Allowed transitions. A failed workflow may be run again, hence failed -> in-progress;
# a completed one may be re-run idempotently, hence done -> in-progress too.
APPLICATION_TRANSITIONS: dict[ApplicationStatus, frozenset[ApplicationStatus]] = {
    ApplicationStatus.REGISTERED: frozenset({ApplicationStatus.ONBOARDING}),
    ApplicationStatus.ONBOARDING: frozenset(
        {ApplicationStatus.ONBOARDED, ApplicationStatus.ONBOARDING_FAILED}
    ),
    ApplicationStatus.ONBOARDING_FAILED: frozenset({ApplicationStatus.ONBOARDING}),
    ApplicationStatus.ONBOARDED: frozenset({ApplicationStatus.ONBOARDING}),
}

ENVIRONMENT_TRANSITIONS: dict[EnvironmentStatus, frozenset[EnvironmentStatus]] = {
    EnvironmentStatus.REQUESTED: frozenset({EnvironmentStatus.PROVISIONING}),
    EnvironmentStatus.PROVISIONING: frozenset(
        {EnvironmentStatus.PROVISIONED, EnvironmentStatus.PROVISIONING_FAILED}
    ),
    EnvironmentStatus.PROVISIONING_FAILED: frozenset({EnvironmentStatus.PROVISIONING}),
    EnvironmentStatus.PROVISIONED: frozenset({EnvironmentStatus.PROVISIONING}),
}

SECRET_TRANSITIONS: dict[SecretStatus, frozenset[SecretStatus]] = {
    SecretStatus.ACTIVE: frozenset({SecretStatus.ROTATING}),
    SecretStatus.ROTATING: frozenset(
        {
            SecretStatus.ACTIVE,
            SecretStatus.ROTATED_PENDING_BINDINGS,
            SecretStatus.ROTATION_FAILED,
        }
    ),
    SecretStatus.ROTATED_PENDING_BINDINGS: frozenset({SecretStatus.ROTATING}),
    SecretStatus.ROTATION_FAILED: frozenset({SecretStatus.ROTATING}),
}

_TABLES: dict[type[StrEnum], dict] = {
    ApplicationStatus: APPLICATION_TRANSITIONS,
    EnvironmentStatus: ENVIRONMENT_TRANSITIONS,
    SecretStatus: SECRET_TRANSITIONS,
}


def check_transition(current: StrEnum, target: StrEnum) -> None:
    """Raise ``IllegalTransition`` unless ``current -> target`` is allowed.

    Moving to the status one already has is allowed (idempotent retries of a step).
    """
    if current == target:
        return
    table = _TABLES[type(current)]
    if target not in table.get(current, frozenset()):
        raise IllegalTransition(
            f"cannot move from {current.value!r} to {target.value!r}",
            details={"from": current.value, "to": target.value},
        )


class EventName(StrEnum):
    """Domain event names (seeds 000-002); ``workflow_<aggregate>_<flow>_<result>``."""

    APPLICATION_CREATED = "application_created"
    APPLICATION_ONBOARDING_COMPLETED = "workflow_application_onboarding_completed"
    APPLICATION_ONBOARDING_FAILED = "workflow_application_onboarding_failed"
    APPENV_REQUESTED = "appenv_requested"
    APPENV_PROVISIONING_COMPLETED = "workflow_appenv_provisioning_completed"
    APPENV_PROVISIONING_FAILED = "workflow_appenv_provisioning_failed"
    SECRET_REGISTERED = "secret_registered"
    SECRET_ROTATION_REQUESTED = "secret_rotation_requested"
    SECRET_ROTATION_STARTED = "secret_rotation_started"
    SECRET_ROTATION_COMPLETED = "workflow_secret_rotation_completed"
    SECRET_ROTATION_FAILED = "workflow_secret_rotation_failed"
    # execution-workers (seed 002): one per /appenv/* handler, result success|error
    APPENV_REPOSITORY = "appenv_repository"
    APPENV_BRANCH_PROTECTION = "appenv_branch_protection"
    APPENV_SECRETS = "appenv_secrets"
    APPENV_SECRET_BINDINGS = "appenv_secret_bindings"
    APPENV_GITOPS_VERIFY = "appenv_gitops_verify"


class EventResult(StrEnum):
    SUCCESS = "success"
    ERROR = "error"


class Aggregate(StrEnum):
    APPLICATION = "application"
    ENVIRONMENT = "environment"
    SECRET = "secret"


EVENT_NAME_PATTERN = re.compile(
    r"^(workflow_(application|appenv|secret)_[a-z]+(_[a-z]+)*_(completed|failed)"
    r"|[a-z]+(_[a-z]+)+)$"
)
