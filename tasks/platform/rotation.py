"""The steps of a secret rotation (SecretRotation, and each secret of the sweep).

Secret values: Harbor's new robot secret exists only inside ``RotateSecret``, which
refreshes it and stores it at once, so only the ``StoredSecret`` (backend, path, version)
leaves the step. No value is ever a step argument, a result, a log line or an event. A
retry of RotateSecret issues another value: the one before was never stored, so nothing
uses it.

What a failed rotation leaves (``SettleFailedRotation``):
- failed before the secret was marked rotating (not rotatable, locked by another run):
  the secret is untouched;
- failed after that but before a value was stored: ``rotation_failed``; the reason says
  whether Harbor had already replaced the value (``rotation_stage == "store"``), i.e.
  whether consumers' current credential is dead;
- failed after the value was stored: ``rotated_pending_bindings`` with the stored
  version recorded, so the new value is never lost and a new rotation can finish it.
The lock is released in every case (a no-op unless this run holds it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from blocks.models import BindingRecord, BindingSpec, RobotAccount, StoredSecret
from blocks.platform.control_plane import ControlPlane, SecretState
from blocks.platform.domain import SecretStatus, check_transition
from blocks.ports import RegistryProvider, SecretBindings, SecretStore
from core.errors import DomainError, PreconditionFailed, ResourceMismatch, shorten
from core.steps import Step
from tasks.platform.calls import in_thread
from tasks.platform.policies import CONTROL_PLANE, PROVIDER, ROTATION

SUPPORTED_PROVIDERS = frozenset({"harbor-robot"})
STAGE_KEY = "rotation_stage"


def check_rotatable(secret: SecretState) -> None:
    """Domain rules before touching anything: rotatable, a known provider, a legal move."""
    if not secret.rotatable:
        raise PreconditionFailed(
            f"secret {secret.id} is not rotatable", details={"secret_id": secret.id}
        )
    if secret.provider not in SUPPORTED_PROVIDERS:
        raise PreconditionFailed(
            f"secret {secret.id}: provider {secret.provider!r} cannot be rotated",
            details={"secret_id": secret.id, "provider": secret.provider},
        )
    check_transition(secret.status, SecretStatus.ROTATING)


async def validate_secret_rotation(control_plane: ControlPlane, secret_id: str) -> SecretState:
    """The secret exists, is rotatable by a supported provider and may enter rotating."""
    secret = await in_thread(control_plane.get_secret, secret_id)
    check_rotatable(secret)
    return secret


async def acquire_secret_lock(
    control_plane: ControlPlane, secret_id: str, holder: str
) -> SecretState:
    """This run holds the secret's lock (``secret_locked`` when another run does)."""
    return await in_thread(control_plane.acquire_secret_lock, secret_id, holder)


async def mark_secret_rotating(
    control_plane: ControlPlane, secret_id: str, holder: str
) -> SecretState:
    return await in_thread(
        control_plane.transition_secret, secret_id, SecretStatus.ROTATING, flow_run_id=holder
    )


async def find_robot_account(
    registry: RegistryProvider, name: str, project: str | None
) -> RobotAccount:
    """The robot account behind a secret (``provider_ref`` in ``project``), enabled."""
    robot = await in_thread(registry.find_robot, name, project=project)
    if robot.disabled:
        raise PreconditionFailed(f"robot {robot.name} is disabled", details={"robot": robot.name})
    return robot


async def rotate_secret(
    registry: RegistryProvider, secrets: SecretStore, secret_id: str, robot: RobotAccount
) -> StoredSecret:
    """Harbor issues a new robot secret and the store keeps it; returns only where."""
    value = await in_thread(registry.refresh_robot_secret, robot.id)
    # From here on the old value is dead and the new one lives only in this frame.
    try:
        return await in_thread(secrets.store_secret_value, secret_id, value)
    except DomainError as exc:
        exc.details[STAGE_KEY] = "store"
        raise


def check_not_superseded(secret_id: str, stored: StoredSecret, known: StoredSecret | None) -> None:
    """Never point bindings at an older value than the control plane already knows.

    A retried run replays its cached ``StoredSecret``; if another run rotated the secret
    meanwhile, that value is dead and the bindings must not go back to it.
    """
    if known is not None and known.path == stored.path and known.version > stored.version:
        raise ResourceMismatch(
            f"secret {secret_id} was rotated again (version {known.version}) since "
            f"version {stored.version} was stored; request a new rotation",
            details={"secret_id": secret_id, "known": known.version, "ours": stored.version},
        )


async def update_secret_bindings(
    bindings: SecretBindings,
    secret_id: str,
    stored: StoredSecret,
    targets: Sequence[BindingSpec],
    known: StoredSecret | None,
) -> list[BindingRecord]:
    """Every binding of the secret points at ``stored`` (``known``: the control plane's)."""
    check_not_superseded(secret_id, stored, known)
    if not targets:
        return []
    return await in_thread(bindings.update_secret_bindings, secret_id, stored, list(targets))


async def mark_secret_rotated(
    control_plane: ControlPlane, secret_id: str, holder: str, stored: StoredSecret
) -> SecretState:
    """The control plane records the rotation: stored location, time, status active."""
    return await in_thread(
        control_plane.record_rotation,
        secret_id,
        flow_run_id=holder,
        stored=stored,
        status=SecretStatus.ACTIVE,
    )


async def release_secret_lock(
    control_plane: ControlPlane, secret_id: str, holder: str
) -> SecretState:
    return await in_thread(control_plane.release_secret_lock, secret_id, holder)


def failure_status(rotating: bool, stored: StoredSecret | None) -> SecretStatus | None:
    """The status a failed rotation leaves (None: the secret was never touched)."""
    if not rotating:
        return None
    return SecretStatus.ROTATED_PENDING_BINDINGS if stored else SecretStatus.ROTATION_FAILED


def failure_reason(
    error_code: str, error: str, stage: str | None, stored: StoredSecret | None
) -> str:
    if stored is not None:
        return shorten(f"new value stored (version {stored.version}); bindings pending: {error}")
    if stage == "store":
        return shorten(f"provider issued a new value but storing it failed: {error}")
    return shorten(f"rotation failed before the provider value changed: {error}")


async def settle_failed_rotation(
    control_plane: ControlPlane,
    secret_id: str,
    holder: str,
    rotating: bool,
    stored: StoredSecret | None,
    error_code: str,
    error: str,
    stage: str | None = None,
) -> SecretStatus | None:
    """Record the truthful state of a failed rotation and release the lock; returns the
    status recorded (None: the secret was untouched)."""
    status = failure_status(rotating, stored)
    if status is SecretStatus.ROTATED_PENDING_BINDINGS and stored is not None:
        await in_thread(
            control_plane.record_rotation,
            secret_id,
            flow_run_id=holder,
            stored=stored,
            status=status,
        )
    elif status is not None:
        await in_thread(
            control_plane.transition_secret,
            secret_id,
            status,
            flow_run_id=holder,
            reason=failure_reason(error_code, error, stage, stored),
        )
    await in_thread(control_plane.release_secret_lock, secret_id, holder)
    return status


def _state(name: str, fn: Any, run_name: str) -> Step[..., Any]:
    return Step(name, fn, CONTROL_PLANE, kind="state", run_name=run_name)


VALIDATE_SECRET_ROTATION = _state(
    "ValidateSecretRotation", validate_secret_rotation, "Validate[{secret_id}]"
)
ACQUIRE_SECRET_LOCK = _state(
    "AcquireSecretLock", acquire_secret_lock, "AcquireSecretLock[{secret_id}]"
)
MARK_SECRET_ROTATING = _state(
    "MarkSecretRotating", mark_secret_rotating, "MarkSecretRotating[{secret_id}]"
)
FIND_ROBOT_ACCOUNT = Step(
    "FindRobotAccount", find_robot_account, PROVIDER, run_name="FindRobotAccount[{name}]"
)
ROTATE_SECRET = Step("RotateSecret", rotate_secret, ROTATION, run_name="RotateSecret[{secret_id}]")
UPDATE_SECRET_BINDINGS = Step(
    "UpdateSecretBindings",
    update_secret_bindings,
    PROVIDER,
    run_name="UpdateSecretBindings[{secret_id}]",
)
MARK_SECRET_ROTATED = _state(
    "MarkSecretRotated", mark_secret_rotated, "MarkSecretRotated[{secret_id}]"
)
RELEASE_SECRET_LOCK = _state(
    "ReleaseSecretLock", release_secret_lock, "ReleaseSecretLock[{secret_id}]"
)
SETTLE_FAILED_ROTATION = _state(
    "SettleFailedRotation", settle_failed_rotation, "SettleFailedRotation[{secret_id}]"
)
