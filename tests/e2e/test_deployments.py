"""Every deployment started the two ways the platform offers: a control-plane command and
the Prefect API (``create_flow_run_from_deployment``), run by the real worker against the
sandbox. Bad parameters never become a run: Prefect checks them against the deployment's
schema and answers 409 naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from prefect.client.schemas.objects import FlowRun
from prefect.exceptions import PrefectHTTPStatusError

from blocks.platform.domain import (
    WORKFLOW_APPENV_PROVISIONING,
    WORKFLOW_APPLICATION_ONBOARDING,
    WORKFLOW_SECRET_ROTATION,
    WORKFLOW_SECRET_ROTATION_SWEEP,
)
from tests.e2e.support import (
    SLOW_MACHINE_TIMEOUT,
    Environment,
    Platform,
    assert_environment_materialized,
    now,
    unique,
)

pytestmark = [pytest.mark.e2e, SLOW_MACHINE_TIMEOUT]


def test_onboarding_started_by_the_control_plane(
    platform: Platform, environment: Environment
) -> None:
    platform.assert_completed(environment.onboarding)
    app = platform.get(f"/api/v1/applications/{environment.application_id}")
    assert app["status"] == "onboarded"
    assert app["last_flow_run_id"] == str(environment.onboarding.id)
    repos = platform.repositories(environment.application_id)
    files = repos[f"{platform.org}/{environment.application_id}"]["files"]["main"]
    assert {"README.md", "catalog-info.yaml"} <= set(files)
    assert "workflow_application_onboarding_completed" in platform.event_names(app["id"])


def test_environment_provisioning_started_by_the_control_plane(
    platform: Platform, environment: Environment
) -> None:
    platform.assert_completed(environment.provisioning)
    env = platform.get(f"/api/v1/environments/{environment.environment_id}")
    assert env["status"] == "provisioned"
    assert env["repository"] == f"appenv-{environment.environment_id}"
    assert_environment_materialized(platform, environment.environment_id)


@dataclass(frozen=True)
class RotatedSecret:
    secret_id: str
    robot: str
    old_value: str  # the robot's secret before the rotation
    run: FlowRun


@pytest.fixture(scope="module")
def rotated_secret(platform: Platform, environment: Environment) -> RotatedSecret:
    """A secret bound to the environment, rotated through the control plane."""
    robot = unique("bot")
    old_value = platform.create_robot(robot)
    secret_id = platform.register_secret(robot, [environment.environment_id])
    requested = now()
    started = platform.command(f"/api/v1/secrets/{secret_id}/rotations")
    run = platform.wait_for_run(started["flow_run_id"], requested_at=requested)
    return RotatedSecret(secret_id, robot, old_value, run)


def binding_versions(platform: Platform, env_id: str, secret_id: str) -> list[tuple[str, int]]:
    found = platform.bindings(env_id)
    return [(b["target"], b["version"]) for b in found if b["secret_id"] == secret_id]


def test_secret_rotation_started_by_the_control_plane(
    platform: Platform, environment: Environment, rotated_secret: RotatedSecret
) -> None:
    platform.assert_completed(rotated_secret.run)
    secret_id, env_id = rotated_secret.secret_id, environment.environment_id
    secret = platform.get(f"/api/v1/secrets/{secret_id}")
    assert secret["status"] == "active"
    assert secret["lock_holder"] is None
    assert secret["stored"] == {
        "backend": "vault",
        "path": f"secret/idp/secrets/{secret_id}",
        "version": 1,
    }
    assert platform.robot_refreshes(rotated_secret.robot) == 1
    assert not platform.harbor_accepts(rotated_secret.robot, rotated_secret.old_value)
    assert platform.vault_keys()[f"idp/secrets/{secret_id}"]["current_version"] == 1
    assert binding_versions(platform, env_id, secret_id) == [(f"k8s:{env_id}/{secret_id}", 1)]


def test_each_workflow_started_through_the_prefect_api(
    platform: Platform, environment: Environment, rotated_secret: RotatedSecret
) -> None:
    """All four deployments at once: onboarding and provisioning again for what exists
    (nothing doubles), the rotated secret rotated again, and a sweep that finds the one
    secret that is due (never rotated)."""
    app_id, env_id = environment.application_id, environment.environment_id
    robot = unique("bot")
    platform.create_robot(robot)
    due_secret = platform.register_secret(robot, [env_id])
    provisioned = platform.event_names(env_id).count("workflow_appenv_provisioning_completed")

    requested = now()
    onboarding, provisioning, rotation, sweep = (
        platform.start_run(WORKFLOW_APPLICATION_ONBOARDING, {"application_id": app_id}),
        platform.start_run(WORKFLOW_APPENV_PROVISIONING, {"environment_id": env_id}),
        platform.start_run(WORKFLOW_SECRET_ROTATION, {"secret_id": rotated_secret.secret_id}),
        platform.start_run(WORKFLOW_SECRET_ROTATION_SWEEP, {"max_concurrency": 2}),
    )
    for run in (onboarding, provisioning, rotation, sweep):
        platform.assert_completed(platform.wait_for_run(run.id, requested_at=requested))

    assert platform.get(f"/api/v1/applications/{app_id}")["status"] == "onboarded"
    assert list(platform.repositories(app_id)) == [f"{platform.org}/{app_id}"]
    assert platform.get(f"/api/v1/environments/{env_id}")["status"] == "provisioned"
    assert_environment_materialized(platform, env_id)
    events = platform.event_names(env_id)
    assert events.count("workflow_appenv_provisioning_completed") == provisioned + 1

    again = platform.get(f"/api/v1/secrets/{rotated_secret.secret_id}")
    assert (again["status"], again["stored"]["version"]) == ("active", 2)
    assert again["last_flow_run_id"] == str(rotation.id)
    assert platform.robot_refreshes(rotated_secret.robot) == 2
    target = f"k8s:{env_id}/{rotated_secret.secret_id}"
    assert binding_versions(platform, env_id, rotated_secret.secret_id) == [(target, 2)]

    swept = platform.get(f"/api/v1/secrets/{due_secret}")
    assert (swept["status"], swept["stored"]["version"]) == ("active", 1)
    assert swept["last_flow_run_id"] == str(sweep.id)
    assert platform.robot_refreshes(robot) == 1
    assert binding_versions(platform, env_id, due_secret) == [(f"k8s:{env_id}/{due_secret}", 1)]


BAD_PARAMETERS = [
    pytest.param(
        WORKFLOW_APPENV_PROVISIONING,
        {"environment_id": "Not A Slug"},
        ["request.environment_id"],
        id="pattern",
    ),
    pytest.param(
        WORKFLOW_APPENV_PROVISIONING,
        {},
        ["'request'", "'environment_id' is a required property"],
        id="missing-field",
    ),
    pytest.param(
        WORKFLOW_APPLICATION_ONBOARDING,
        {"application_id": "ok", "team": "x"},
        ["'request'", "'team'"],
        id="unknown-field",
    ),
    pytest.param(
        WORKFLOW_SECRET_ROTATION, {"secret_id": 42}, ["request.secret_id"], id="wrong-type"
    ),
    pytest.param(
        WORKFLOW_SECRET_ROTATION_SWEEP,
        {"max_concurrency": 0},
        ["request.max_concurrency"],
        id="below-minimum",
    ),
]


@pytest.mark.parametrize(("workflow", "request_body", "named"), BAD_PARAMETERS)
def test_bad_parameters_are_refused_by_prefect_and_create_no_run(
    platform: Platform, workflow: str, request_body: dict[str, Any], named: list[str]
) -> None:
    deployment = platform.deployment(workflow)
    before = platform.count_runs(deployment.id)

    with pytest.raises(PrefectHTTPStatusError) as refused:
        platform.prefect.create_flow_run_from_deployment(
            deployment.id, parameters={"request": request_body}
        )

    assert refused.value.response.status_code == 409
    detail = refused.value.response.json()["detail"]
    for fragment in named:
        assert fragment in detail
    assert platform.count_runs(deployment.id) == before
