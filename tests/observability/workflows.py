"""Workflow runs the observability tests drive, as one-liners (sync and async)."""

from __future__ import annotations

from typing import Any

import httpx
from prefect.states import State
from prometheus_client.parser import text_string_to_metric_families

from blocks.platform.workflows import (
    ApplicationEnvironmentProvisioningRequest,
    ApplicationOnboardingRequest,
    SecretRotationRequest,
)
from flows.platform.application_onboarding import application_onboarding
from flows.platform.environment_provisioning import application_environment_provisioning
from flows.platform.secret_rotation import secret_rotation
from tests.flows.platform.support import run

Labels = dict[str, str]


async def aprovision(env_id: str) -> State[Any]:
    request = ApplicationEnvironmentProvisioningRequest(environment_id=env_id)
    state: State[Any] = await application_environment_provisioning(
        request=request, return_state=True
    )
    return state


async def aonboard(app_id: str) -> State[Any]:
    request = ApplicationOnboardingRequest(application_id=app_id)
    state: State[Any] = await application_onboarding(request=request, return_state=True)
    return state


async def arotate(secret_id: str) -> State[Any]:
    request = SecretRotationRequest(secret_id=secret_id)
    state: State[Any] = await secret_rotation(request=request, return_state=True)
    return state


def provision(env_id: str) -> State[Any]:
    return run(aprovision(env_id))


def onboard(app_id: str) -> State[Any]:
    return run(aonboard(app_id))


def rotate(secret_id: str) -> State[Any]:
    return run(arotate(secret_id))


class Scrape:
    """One ``/metrics`` answer, read as Prometheus would."""

    def __init__(self, base_url: str) -> None:
        text = httpx.get(f"{base_url}/metrics", timeout=10).text
        self.samples: list[tuple[str, Labels, float]] = [
            (sample.name, dict(sample.labels), sample.value)
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        ]

    def value(self, name: str, **labels: str) -> float:
        """The sample ``name`` whose labels include ``labels`` (summed; 0 when absent)."""
        return sum(
            value
            for sample, found, value in self.samples
            if sample == name and labels.items() <= found.items()
        )

    def label_names(self, name: str) -> set[frozenset[str]]:
        return {frozenset(found) for sample, found, _ in self.samples if sample == name}
