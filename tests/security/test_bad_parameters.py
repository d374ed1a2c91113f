"""Bad workflow parameters are refused at the door, naming the field, and nothing is written.

Two doors: the control plane's commands (422 ``invalid_input`` with ``details.fields``, the
bad value never echoed, no row, no event, no run launched) and the Prefect API, where
anyone with access can create a run of a deployment directly (the server checks the flow's
parameter schema: 409 naming the field, and no flow run exists afterwards).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prefect import Flow
from prefect.client.orchestration import get_client
from prefect.settings import get_current_settings

from blocks.platform.domain import (
    WORKFLOW_APPENV_PROVISIONING,
    WORKFLOW_APPLICATION_ONBOARDING,
    WORKFLOW_BULK_APPENV_PROVISIONING,
    WORKFLOW_SECRET_ROTATION,
    WORKFLOW_SECRET_ROTATION_SWEEP,
)
from flows.platform.application_onboarding import application_onboarding
from flows.platform.bulk_environment_provisioning import bulk_environment_provisioning
from flows.platform.environment_provisioning import application_environment_provisioning
from flows.platform.secret_rotation import secret_rotation
from flows.platform.secret_rotation_sweep import secret_rotation_sweep
from tests.flows.platform.support import Domain
from tests.security.conftest import SecuredControlPlane
from tests.security.test_secret_leaks import database_rows

pytestmark = pytest.mark.security

FLOWS: dict[str, Flow[Any, Any]] = {
    WORKFLOW_APPLICATION_ONBOARDING: application_onboarding,
    WORKFLOW_APPENV_PROVISIONING: application_environment_provisioning,
    WORKFLOW_SECRET_ROTATION: secret_rotation,
    WORKFLOW_SECRET_ROTATION_SWEEP: secret_rotation_sweep,
    WORKFLOW_BULK_APPENV_PROVISIONING: bulk_environment_provisioning,
}
BAD_VALUE = "Not A Slug; DROP TABLE secret"

# (path, body, field the answer must name)
BAD_COMMANDS: list[tuple[str, dict[str, Any], str]] = [
    ("/api/v1/applications", {"name": BAD_VALUE, "team": "pay"}, "name"),
    ("/api/v1/applications", {"name": "payments-x"}, "team"),
    ("/api/v1/applications", {"name": "p" * 200, "team": "pay"}, "name"),
    ("/api/v1/applications/{app}/environments", {"name": BAD_VALUE}, "name"),
    (
        "/api/v1/applications/{app}/environments",
        {"name": "qa", "secrets": [BAD_VALUE]},
        "secrets.0",
    ),
    (
        "/api/v1/secrets",
        {"id": "s-x", "provider": BAD_VALUE, "provider_ref": "ci"},
        "provider",
    ),
    (
        "/api/v1/secrets",
        {
            "id": "s-y",
            "provider": "harbor-robot",
            "provider_ref": "ci",
            "rotation_interval_seconds": 1,
        },
        "rotation_interval_seconds",
    ),
    (
        "/api/v1/secrets",
        {
            "id": "s-z",
            "provider": "harbor-robot",
            "provider_ref": "ci",
            "bindings": [{"environment_id": "", "target": "k8s:x/y"}],
        },
        "bindings.0.environment_id",
    ),
]  # fmt: skip

# (workflow, parameters, field the answer must name)
BAD_RUNS: list[tuple[str, dict[str, Any], str]] = [
    (
        WORKFLOW_APPLICATION_ONBOARDING,
        {"request": {"application_id": BAD_VALUE}},
        "request.application_id",
    ),
    (WORKFLOW_APPENV_PROVISIONING, {}, "request"),
    (
        WORKFLOW_APPENV_PROVISIONING,
        {"request": {"environment_id": BAD_VALUE}},
        "request.environment_id",
    ),
    (WORKFLOW_APPENV_PROVISIONING, {"request": {"environment_id": "a-dev", "x": 1}}, "x"),
    (WORKFLOW_SECRET_ROTATION, {"request": {"secret_id": 42}}, "request.secret_id"),
    (
        WORKFLOW_SECRET_ROTATION_SWEEP,
        {"request": {"max_concurrency": 0}},
        "request.max_concurrency",
    ),
    (
        WORKFLOW_SECRET_ROTATION_SWEEP,
        {"request": {"max_concurrency": 10_000}},
        "request.max_concurrency",
    ),
    (
        WORKFLOW_BULK_APPENV_PROVISIONING,
        {"request": {"environment_ids": []}},
        "request.environment_ids",
    ),
    (
        WORKFLOW_BULK_APPENV_PROVISIONING,
        {"request": {"environment_ids": ["a-dev", BAD_VALUE]}},
        "request.environment_ids[1]",
    ),
]


@pytest.mark.parametrize(("path", "body", "field"), BAD_COMMANDS)
def test_a_bad_command_names_the_field_and_writes_nothing(
    platform: Domain,
    control_plane: SecuredControlPlane,
    path: str,
    body: dict[str, Any],
    field: str,
) -> None:
    app_id = platform.application(onboarded=True)
    launches, rows = len(control_plane.launcher.launches), database_rows(control_plane)

    with control_plane.client() as client:
        response = client.post(path.format(app=app_id), json=body)

    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert field in [f["field"] for f in error["details"]["fields"]]
    assert BAD_VALUE not in response.text  # the value is never echoed
    assert database_rows(control_plane) == rows
    assert len(control_plane.launcher.launches) == launches


def test_commands_on_unknown_aggregates_start_nothing(
    platform: Domain, control_plane: SecuredControlPlane
) -> None:
    launches, rows = len(control_plane.launcher.launches), database_rows(control_plane)
    with control_plane.client() as client:
        answers = [
            client.post("/api/v1/secrets/no-such-secret/rotations"),
            client.post("/api/v1/applications/no-such-app/environments", json={"name": "dev"}),
        ]
    assert [(r.status_code, r.json()["error"]["code"]) for r in answers] == [
        (404, "not_found"),
        (404, "not_found"),
    ]
    assert database_rows(control_plane) == rows
    assert len(control_plane.launcher.launches) == launches


@pytest.fixture(scope="module")
def deployments(prefect_harness: None) -> Iterator[dict[str, str]]:
    """Every workflow deployed in the test harness (schema enforced, as prefect.yaml does)."""

    async def deploy() -> dict[str, str]:
        ids = {}
        for name, flow in FLOWS.items():
            deployment = await flow.ato_deployment(name="security", enforce_parameter_schema=True)
            ids[name] = str(await deployment.aapply())
        return ids

    yield asyncio.run(deploy())


def runs_of(deployment_id: str) -> int:
    async def count() -> int:
        async with get_client() as client:
            body = {"deployments": {"id": {"any_": [deployment_id]}}}
            response = await client.request("POST", "/flow_runs/count", json=body)
            return int(response.json())

    return asyncio.run(count())


@pytest.mark.parametrize(("workflow", "parameters", "field"), BAD_RUNS)
def test_a_bad_run_request_through_prefect_names_the_field_and_creates_no_run(
    deployments: dict[str, str], workflow: str, parameters: dict[str, Any], field: str
) -> None:
    deployment_id = deployments[workflow]
    before = runs_of(deployment_id)

    response = httpx.post(
        f"{get_current_settings().api.url}/deployments/{deployment_id}/create_flow_run",
        json={"parameters": parameters},
        timeout=30,
    )

    assert response.status_code == 409, response.text
    assert f"'{field}'" in response.json()["detail"]
    assert runs_of(deployment_id) == before


def test_a_good_run_request_is_accepted(deployments: dict[str, str]) -> None:
    """The control for the test above: the same door lets a valid request in."""
    deployment_id = deployments[WORKFLOW_APPENV_PROVISIONING]
    before = runs_of(deployment_id)
    response = httpx.post(
        f"{get_current_settings().api.url}/deployments/{deployment_id}/create_flow_run",
        json={"parameters": {"request": {"environment_id": "payments-dev"}}},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    assert runs_of(deployment_id) == before + 1
