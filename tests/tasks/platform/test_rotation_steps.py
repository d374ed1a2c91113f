"""The rotation steps shared by SecretRotation and the sweep, called as plain functions
against Harbor and Vault."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from blocks.harbor import HarborProvider
from blocks.models import StoredSecret
from blocks.platform.control_plane import SecretState
from blocks.platform.domain import SecretStatus
from blocks.vault import VaultSecretBackend
from core.errors import DomainError, PreconditionFailed, ResourceMismatch
from sandbox.harbor import RobotSpec
from sandbox.run import HARBOR_PROJECT, Sandbox
from tasks.platform import rotation as steps
from tasks.platform.rotation import find_robot_account, rotate_secret
from tests.flows.platform.support import unique


def new_robot(sandbox: Sandbox, *, disable: bool = False) -> str:
    name = unique("robot")
    sandbox.harbor.add_robots([RobotSpec(name=name, project=HARBOR_PROJECT, disable=disable)])
    return name


def current_secret(sandbox: Sandbox, robot: str) -> str:
    return sandbox.harbor.robot_secret(f"robot${HARBOR_PROJECT}+{robot}")


def harbor_accepts(sandbox: Sandbox, robot: str, secret: str) -> bool:
    response = httpx.get(
        f"{sandbox.harbor.api_url}/projects/{HARBOR_PROJECT}",
        auth=(f"robot${HARBOR_PROJECT}+{robot}", secret),
        headers={"X-Is-Resource-Name": "true"},
    )
    return response.status_code != 401


def secret_state(**changes: Any) -> SecretState:
    now = datetime.now(UTC)
    fields: dict[str, Any] = {
        "id": "sec-1",
        "provider": "harbor-robot",
        "provider_ref": "ci",
        "project": HARBOR_PROJECT,
        "rotatable": True,
        "rotation_interval_seconds": 3600,
        "status": SecretStatus.ACTIVE,
        "created_at": now,
        "updated_at": now,
    }
    return SecretState.model_validate({**fields, **changes})


def test_rotate_and_store_stores_the_secret_harbor_now_accepts(
    registry: HarborProvider, backend: VaultSecretBackend, sandbox: Sandbox
) -> None:
    robot_name = new_robot(sandbox)
    old = current_secret(sandbox, robot_name)
    robot = asyncio.run(find_robot_account(registry, robot_name, HARBOR_PROJECT))
    secret_id = unique("sec")

    stored = asyncio.run(rotate_secret(registry, backend, secret_id, robot))

    value = backend.read_secret_value(secret_id).get_secret_value()
    assert stored == StoredSecret(
        backend="vault", path=f"secret/idp/secrets/{secret_id}", version=1
    )
    assert harbor_accepts(sandbox, robot_name, value)
    assert not harbor_accepts(sandbox, robot_name, old)


def test_a_failing_store_fails_the_attempt_and_says_the_provider_value_changed(
    registry: HarborProvider, backend: VaultSecretBackend, sandbox: Sandbox
) -> None:
    robot_name = new_robot(sandbox)
    robot = asyncio.run(find_robot_account(registry, robot_name, HARBOR_PROJECT))
    secret_id = unique("sec")
    sandbox.vault.server.faults.add(
        method="POST", path=f"/idp/secrets/{secret_id}$", statuses=[503]
    )

    with pytest.raises(DomainError) as raised:
        asyncio.run(rotate_secret(registry, backend, secret_id, robot))

    # Transient: Prefect retries the step, which issues a fresh value (the one before was
    # never stored, so nothing uses it): tests/flows/platform/test_secret_rotation.py.
    assert raised.value.code == "upstream_unavailable"
    assert raised.value.details[steps.STAGE_KEY] == "store"


def test_a_store_that_keeps_failing_says_the_provider_value_changed(
    registry: HarborProvider, backend: VaultSecretBackend, sandbox: Sandbox
) -> None:
    robot_name = new_robot(sandbox)
    robot = asyncio.run(find_robot_account(registry, robot_name, HARBOR_PROJECT))
    secret_id = unique("sec")
    sandbox.vault.server.faults.add(
        method="POST", path=f"/idp/secrets/{secret_id}$", statuses=[403]
    )

    with pytest.raises(DomainError) as raised:
        asyncio.run(rotate_secret(registry, backend, secret_id, robot))

    assert raised.value.code == "forbidden"
    assert raised.value.details[steps.STAGE_KEY] == "store"
    reason = steps.failure_reason(raised.value.code, str(raised.value), "store", None)
    assert "storing it failed" in reason


def test_a_disabled_robot_is_not_rotated(registry: HarborProvider, sandbox: Sandbox) -> None:
    robot_name = new_robot(sandbox, disable=True)

    with pytest.raises(PreconditionFailed):
        asyncio.run(find_robot_account(registry, robot_name, HARBOR_PROJECT))


@pytest.mark.parametrize(
    "changes, code",
    [
        ({}, None),
        ({"status": SecretStatus.ROTATION_FAILED}, None),
        ({"status": SecretStatus.ROTATED_PENDING_BINDINGS}, None),
        ({"rotatable": False}, "precondition_failed"),
        ({"provider": "aws-iam-key"}, "precondition_failed"),
    ],
)
def test_check_rotatable(changes: dict[str, Any], code: str | None) -> None:
    secret = secret_state(**changes)
    if code is None:
        steps.check_rotatable(secret)
    else:
        with pytest.raises(DomainError) as raised:
            steps.check_rotatable(secret)
        assert raised.value.code == code


def test_bindings_never_go_back_to_a_superseded_value() -> None:
    ours = StoredSecret(backend="vault", path="secret/idp/secrets/s", version=3)
    newer = ours.model_copy(update={"version": 4})

    steps.check_not_superseded("s", ours, None)
    steps.check_not_superseded("s", ours, ours)
    with pytest.raises(ResourceMismatch):
        steps.check_not_superseded("s", ours, newer)


@pytest.mark.parametrize(
    "rotating, stored, status",
    [
        (False, None, None),
        (True, None, SecretStatus.ROTATION_FAILED),
        (
            True,
            StoredSecret(backend="vault", path="p", version=1),
            SecretStatus.ROTATED_PENDING_BINDINGS,
        ),
    ],
)
def test_what_a_failed_rotation_leaves(
    rotating: bool, stored: StoredSecret | None, status: SecretStatus | None
) -> None:
    assert steps.failure_status(rotating, stored) == status
