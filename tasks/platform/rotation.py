"""The SecretRotation flow's tasks: one step each, over the shared ``rotation_steps``.

Control-plane steps are never cached (a retried run re-reads the secret and takes the
lock again); provider steps are cached per flow run, so a retried run does not ask Harbor
for yet another secret when the previous attempt already stored one.
"""

from __future__ import annotations

from collections.abc import Sequence

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from blocks.models import BindingRecord, BindingSpec, RobotAccount, StoredSecret
from blocks.platform.control_plane import ControlPlane, SecretState
from blocks.platform.domain import SecretStatus
from blocks.ports import RegistryProvider, SecretBackend
from tasks.platform import rotation_steps as steps
from tasks.platform.policy import in_thread, provider_task, state_task


@task(name="ValidateSecretRotation", task_run_name="Validate[{secret_id}]", **state_task())
async def validate_secret_rotation(control_plane: ControlPlane, secret_id: str) -> SecretState:
    """The secret exists, is rotatable by a supported provider and may enter rotating."""
    secret = await in_thread(control_plane.get_secret, secret_id)
    steps.check_rotatable(secret)
    return secret


@task(name="AcquireSecretLock", task_run_name="AcquireSecretLock[{secret_id}]", **state_task())
async def acquire_secret_lock(control_plane: ControlPlane, secret_id: str, holder: str) -> None:
    """This run holds the secret's lock (``secret_locked`` when another run does)."""
    await steps.lock_secret(control_plane, secret_id, holder)


@task(name="MarkSecretRotating", task_run_name="MarkSecretRotating[{secret_id}]", **state_task())
async def mark_secret_rotating(
    control_plane: ControlPlane, secret_id: str, holder: str
) -> SecretState:
    return await steps.mark_rotating(control_plane, secret_id, holder)


@task(name="FindRobotAccount", task_run_name="FindRobotAccount[{name}]", **provider_task())
async def find_robot_account(
    registry: RegistryProvider, name: str, project: str | None
) -> RobotAccount:
    return await steps.find_robot(registry, name, project)


@task(
    name="RotateSecret", task_run_name="RotateSecret[{secret_id}]", **provider_task(steps.ROTATION)
)
async def rotate_secret(
    registry: RegistryProvider, backend: SecretBackend, secret_id: str, robot: RobotAccount
) -> StoredSecret:
    """Harbor issues a new robot secret and the backend stores it; returns only where."""
    return await steps.rotate_and_store(
        registry, backend, secret_id, robot, flow_run_id=flow_run.id
    )


@task(
    name="UpdateSecretBindings",
    task_run_name="UpdateSecretBindings[{secret_id}]",
    **provider_task(),
)
async def update_secret_bindings(
    backend: SecretBackend,
    secret_id: str,
    stored: StoredSecret,
    bindings: Sequence[BindingSpec],
    known: StoredSecret | None,
) -> list[BindingRecord]:
    """Every binding of the secret points at the stored version."""
    return await steps.update_bindings(backend, secret_id, stored, bindings, known)


@task(name="MarkSecretRotated", task_run_name="MarkSecretRotated[{secret_id}]", **state_task())
async def mark_secret_rotated(
    control_plane: ControlPlane, secret_id: str, holder: str, stored: StoredSecret
) -> SecretState:
    """The control plane records the rotation: stored location, time, status active."""
    return await steps.mark_rotated(control_plane, secret_id, holder, stored)


@task(name="ReleaseSecretLock", task_run_name="ReleaseSecretLock[{secret_id}]", **state_task())
async def release_secret_lock(control_plane: ControlPlane, secret_id: str, holder: str) -> None:
    await steps.unlock_secret(control_plane, secret_id, holder)


@task(
    name="SettleFailedRotation",
    task_run_name="SettleFailedRotation[{secret_id}]",
    persist_result=True,
    cache_policy=NO_CACHE,
)
async def settle_failed_rotation(
    control_plane: ControlPlane,
    secret_id: str,
    holder: str,
    rotating: bool,
    stored: StoredSecret | None,
    error: BaseException,
) -> SecretStatus | None:
    """Record what state the failed rotation left the secret in; release the lock."""
    return await steps.settle_failed_rotation(
        control_plane,
        secret_id,
        holder,
        rotating=rotating,
        stored=stored,
        exc=error,
        flow_run_id=holder,
    )
