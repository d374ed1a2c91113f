"""The steps of a secret rotation, written once and used twice.

The SecretRotation flow calls them as tasks (one task run per step, Prefect retries);
the sweep calls the same functions in code for hundreds of secrets inside a few batch
tasks (``tasks/platform/sweep.py``), wrapping each in ``retrying`` with the same policies.

Secret values: Harbor's new robot secret exists only inside ``rotate_and_store``. The
refresh invalidates the old value at once, so the new one is stored immediately, with
its own in-memory retries, before any later step can fail, and only the
``StoredSecret`` (backend, path, version) leaves the function. No value is ever a task
parameter, a result, a log line or an event.

What a failed rotation leaves (``settle_failed_rotation``):
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

import logging
from collections.abc import Sequence

import anyio

from blocks.models import BindingRecord, BindingSpec, RobotAccount, StoredSecret
from blocks.platform.control_plane import ControlPlane, SecretState
from blocks.platform.domain import SecretStatus, check_transition
from blocks.ports import RegistryProvider, SecretBackend
from core.errors import DomainError, PreconditionFailed, ResourceMismatch, shorten
from tasks.platform.policy import CONTROL_PLANE, RetryPolicy, in_limited_thread, retrying

logger = logging.getLogger(__name__)

SUPPORTED_PROVIDERS = frozenset({"harbor-robot"})
# The refresh is retried by the task; the store, whose value exists only in memory, in code.
ROTATION = RetryPolicy(retries=2, backoff_seconds=1.0, timeout_seconds=180.0)
STORE = RetryPolicy(retries=4, backoff_seconds=0.5, timeout_seconds=30.0)
STAGE_KEY = "rotation_stage"

Limiter = anyio.CapacityLimiter | None


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


async def lock_secret(
    control_plane: ControlPlane, secret_id: str, holder: str, *, limiter: Limiter = None
) -> SecretState:
    """Hold the secret's lock (``SecretLocked`` when another run holds it)."""
    return await in_limited_thread(limiter, control_plane.acquire_secret_lock, secret_id, holder)


async def mark_rotating(
    control_plane: ControlPlane, secret_id: str, holder: str, *, limiter: Limiter = None
) -> SecretState:
    return await in_limited_thread(
        limiter,
        control_plane.transition_secret,
        secret_id,
        SecretStatus.ROTATING,
        flow_run_id=holder,
    )


async def find_robot(
    registry: RegistryProvider, name: str, project: str | None, *, limiter: Limiter = None
) -> RobotAccount:
    """The robot account behind a secret (``provider_ref`` in ``project``), enabled."""
    robot = await in_limited_thread(limiter, registry.find_robot, name, project=project)
    if robot.disabled:
        raise PreconditionFailed(f"robot {robot.name} is disabled", details={"robot": robot.name})
    return robot


async def rotate_and_store(
    registry: RegistryProvider,
    backend: SecretBackend,
    secret_id: str,
    robot: RobotAccount,
    *,
    limiter: Limiter = None,
    flow_run_id: object = None,
) -> StoredSecret:
    """Issue a new robot secret and store it at once; only where it went leaves here."""
    value = await in_limited_thread(limiter, registry.refresh_robot_secret, robot.id)
    # From here on the old value is dead and the new one lives only in this frame:
    # retry the store with the value in memory rather than issue yet another one.
    try:
        return await retrying(
            STORE,
            lambda: in_limited_thread(limiter, backend.store_secret_value, secret_id, value),
            flow_run_id=flow_run_id,
        )
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


async def update_bindings(
    backend: SecretBackend,
    secret_id: str,
    stored: StoredSecret,
    bindings: Sequence[BindingSpec],
    known: StoredSecret | None = None,
    *,
    limiter: Limiter = None,
) -> list[BindingRecord]:
    """Every binding of the secret points at ``stored`` (``known``: the control plane's)."""
    check_not_superseded(secret_id, stored, known)
    if not bindings:
        return []
    return await in_limited_thread(
        limiter, backend.update_secret_bindings, secret_id, stored, list(bindings)
    )


async def mark_rotated(
    control_plane: ControlPlane,
    secret_id: str,
    holder: str,
    stored: StoredSecret,
    status: SecretStatus = SecretStatus.ACTIVE,
    *,
    limiter: Limiter = None,
) -> SecretState:
    """Record the rotation (stored location, time) and the secret's new status."""
    return await in_limited_thread(
        limiter,
        control_plane.record_rotation,
        secret_id,
        flow_run_id=holder,
        stored=stored,
        status=status,
    )


async def unlock_secret(
    control_plane: ControlPlane, secret_id: str, holder: str, *, limiter: Limiter = None
) -> SecretState:
    return await in_limited_thread(limiter, control_plane.release_secret_lock, secret_id, holder)


def failure_status(rotating: bool, stored: StoredSecret | None) -> SecretStatus | None:
    """The status a failed rotation leaves (None: the secret was never touched)."""
    if not rotating:
        return None
    return SecretStatus.ROTATED_PENDING_BINDINGS if stored else SecretStatus.ROTATION_FAILED


def failure_reason(exc: BaseException, stored: StoredSecret | None) -> str:
    if stored is not None:
        return shorten(f"new value stored (version {stored.version}); bindings pending: {exc}")
    details = exc.details if isinstance(exc, DomainError) else {}
    if details.get(STAGE_KEY) == "store":
        return shorten(f"provider issued a new value but storing it failed: {exc}")
    return shorten(f"rotation failed before the provider value changed: {exc}")


async def settle_failed_rotation(
    control_plane: ControlPlane,
    secret_id: str,
    holder: str,
    *,
    rotating: bool,
    stored: StoredSecret | None,
    exc: BaseException,
    limiter: Limiter = None,
    flow_run_id: object = None,
) -> SecretStatus | None:
    """Record the truthful state of a failed rotation and release the lock (best effort).

    Returns the status recorded. Errors here are logged, never raised: the caller is
    already failing with the error that matters.
    """
    status = failure_status(rotating, stored)
    reason = failure_reason(exc, stored)
    try:
        if status is SecretStatus.ROTATED_PENDING_BINDINGS and stored is not None:
            await retrying(
                CONTROL_PLANE,
                lambda: mark_rotated(
                    control_plane, secret_id, holder, stored, status, limiter=limiter
                ),
                flow_run_id=flow_run_id,
            )
        elif status is not None:
            await retrying(
                CONTROL_PLANE,
                lambda: in_limited_thread(
                    limiter,
                    control_plane.transition_secret,
                    secret_id,
                    status,
                    flow_run_id=holder,
                    reason=reason,
                ),
                flow_run_id=flow_run_id,
            )
    except Exception as settle_exc:
        logger.warning("could not record the state of secret %s: %s", secret_id, settle_exc)
    try:
        await retrying(
            CONTROL_PLANE,
            lambda: unlock_secret(control_plane, secret_id, holder, limiter=limiter),
            flow_run_id=flow_run_id,
        )
    except Exception as unlock_exc:
        logger.warning("could not release the lock of secret %s: %s", secret_id, unlock_exc)
    return status
