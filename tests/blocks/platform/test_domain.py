from __future__ import annotations

import pytest

from blocks.platform.domain import (
    EVENT_NAME_PATTERN,
    ApplicationStatus,
    EnvironmentStatus,
    EventName,
    SecretStatus,
    appenv_repository_name,
    check_transition,
)
from core.errors import IllegalTransition


def test_repository_name_follows_the_seed() -> None:
    assert appenv_repository_name("payments-dev") == "appenv-payments-dev"


@pytest.mark.parametrize(
    "current, target",
    [
        (ApplicationStatus.REGISTERED, ApplicationStatus.ONBOARDING),
        (ApplicationStatus.ONBOARDING, ApplicationStatus.ONBOARDED),
        (ApplicationStatus.ONBOARDING, ApplicationStatus.ONBOARDING_FAILED),
        (ApplicationStatus.ONBOARDING_FAILED, ApplicationStatus.ONBOARDING),
        (EnvironmentStatus.REQUESTED, EnvironmentStatus.PROVISIONING),
        (EnvironmentStatus.PROVISIONING, EnvironmentStatus.PROVISIONED),
        (SecretStatus.ACTIVE, SecretStatus.ROTATING),
        (SecretStatus.ROTATING, SecretStatus.ROTATED_PENDING_BINDINGS),
        (EnvironmentStatus.PROVISIONED, EnvironmentStatus.PROVISIONED),
    ],
)
def test_allowed_transitions(current: object, target: object) -> None:
    check_transition(current, target)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "current, target",
    [
        (ApplicationStatus.REGISTERED, ApplicationStatus.ONBOARDED),
        (EnvironmentStatus.REQUESTED, EnvironmentStatus.PROVISIONED),
        (EnvironmentStatus.PROVISIONED, EnvironmentStatus.PROVISIONING_FAILED),
        (SecretStatus.ACTIVE, SecretStatus.ROTATION_FAILED),
    ],
)
def test_illegal_transitions_are_refused_with_a_code(current: object, target: object) -> None:
    with pytest.raises(IllegalTransition) as info:
        check_transition(current, target)  # type: ignore[arg-type]
    assert info.value.code == "illegal_transition"
    assert info.value.details == {"from": current.value, "to": target.value}  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", list(EventName))
def test_event_names_follow_the_convention(name: EventName) -> None:
    assert EVENT_NAME_PATTERN.match(name.value)
    if name.value.startswith("workflow_"):
        assert name.value.endswith(("_completed", "_failed"))
