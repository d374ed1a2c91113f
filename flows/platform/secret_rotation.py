"""SecretRotation (seed 001): rotate one secret in its provider and update its bindings.

Trigger: ``POST /api/v1/secrets/{id}/rotations`` on control-plane-api reserves the
secret's lock for the run it starts (``SecretRotation/idp``); the sweep rotates due
secrets with the same steps (``rotate``, below).

Steps: ValidateSecretRotation (rotatable, supported provider, may enter rotating) ->
AcquireSecretLock (``secret_locked`` if another run holds it) -> MarkSecretRotating ->
``secret_rotation_started`` -> FindRobotAccount -> RotateSecret (Harbor refresh + store
the value, inside one step: the value never leaves it) -> UpdateSecretBindings ->
MarkSecretRotated -> ReleaseSecretLock -> ``workflow_secret_rotation_completed``. On
failure SettleFailedRotation records the secret's truthful state (``rotation_failed``, or
``rotated_pending_bindings`` once the new value is stored) and releases the lock, then
``_failed``. A cancelled or crashed run only releases the lock (flow hooks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prefect import Flow, flow
from prefect.client.schemas.objects import FlowRun
from prefect.states import State

from blocks.models import BindingRecord, RobotAccount, StoredSecret
from blocks.platform.control_plane import SecretState
from blocks.platform.domain import (
    WORKFLOW_SECRET_ROTATION,
    Aggregate,
    EventName,
    SecretStatus,
)
from blocks.platform.workflows import SecretRotationRequest
from core.errors import DomainError
from core.steps import Runner
from flows.platform.results import SecretRotationResult
from flows.platform.roles import Roles, load_role
from flows.platform.run import PlatformRun, best_effort, error_code, error_text
from tasks.platform.calls import in_thread
from tasks.platform.control_plane import RECORD_DOMAIN_EVENT, DomainEventSpec
from tasks.platform.rotation import (
    ACQUIRE_SECRET_LOCK,
    FIND_ROBOT_ACCOUNT,
    MARK_SECRET_ROTATED,
    MARK_SECRET_ROTATING,
    RELEASE_SECRET_LOCK,
    ROTATE_SECRET,
    SETTLE_FAILED_ROTATION,
    STAGE_KEY,
    UPDATE_SECRET_BINDINGS,
    VALIDATE_SECRET_ROTATION,
)

ROLES = ("registry", "secrets", "bindings")
STEPS = (
    VALIDATE_SECRET_ROTATION,
    ACQUIRE_SECRET_LOCK,
    MARK_SECRET_ROTATING,
    RECORD_DOMAIN_EVENT,
    FIND_ROBOT_ACCOUNT,
    ROTATE_SECRET,
    UPDATE_SECRET_BINDINGS,
    MARK_SECRET_ROTATED,
    RELEASE_SECRET_LOCK,
    SETTLE_FAILED_ROTATION,
)


@dataclass
class Rotation:
    """What one secret's rotation did, as far as it got."""

    secret: SecretState
    rotating: bool = False
    robot: RobotAccount | None = None
    stored: StoredSecret | None = None
    bindings: list[BindingRecord] | None = None


async def rotate(
    run: Runner,
    roles: Roles,
    done: Rotation,
    holder: str,
    started: DomainEventSpec,
) -> Rotation:
    """The seed's rotation steps for one secret, after it was read (``done.secret``)."""
    cp, secret = roles.control_plane, done.secret
    await run(ACQUIRE_SECRET_LOCK, cp, secret.id, holder)
    await run(MARK_SECRET_ROTATING, cp, secret.id, holder)
    done.rotating = True
    await run(RECORD_DOMAIN_EVENT, cp, started)
    robot = await run(FIND_ROBOT_ACCOUNT, roles.registry, secret.provider_ref, secret.project)
    done.robot = robot
    stored = await run(ROTATE_SECRET, roles.registry, roles.secrets, secret.id, robot)
    done.stored = stored
    done.bindings = await run(
        UPDATE_SECRET_BINDINGS, roles.bindings, secret.id, stored, secret.bindings, secret.stored
    )
    await run(MARK_SECRET_ROTATED, cp, secret.id, holder, stored)
    await run(RELEASE_SECRET_LOCK, cp, secret.id, holder)
    return done


async def settle(
    run: Runner, roles: Roles, done: Rotation, holder: str, exc: BaseException
) -> SecretStatus | None:
    """Record what the failed rotation left and release the lock."""
    stage = exc.details.get(STAGE_KEY) if isinstance(exc, DomainError) else None
    return await run(
        SETTLE_FAILED_ROTATION,
        roles.control_plane,
        done.secret.id,
        holder,
        done.rotating,
        done.stored,
        error_code(exc),
        error_text(exc),
        stage,
    )


async def release_lock_on_abort(flow: Flow[Any, Any], flow_run: FlowRun, state: State) -> None:
    """A cancelled or crashed run skips the failure path; it must not keep the lock.

    The secret stays ``rotating`` (its truth is unknown); the next rotation may proceed.
    """
    request = SecretRotationRequest.model_validate(flow_run.parameters["request"])
    control_plane = await load_role("control_plane")
    await in_thread(control_plane.release_secret_lock, request.secret_id, str(flow_run.id))


@flow(
    name=WORKFLOW_SECRET_ROTATION,
    flow_run_name="rotate-{request.secret_id}",
    persist_result=True,
    on_cancellation=[release_lock_on_abort],
    on_crashed=[release_lock_on_abort],
)
async def secret_rotation(request: SecretRotationRequest) -> SecretRotationResult:
    """Rotate a secret: new provider value, stored at once, bindings updated."""
    secret_id = request.secret_id
    async with PlatformRun.open(
        WORKFLOW_SECRET_ROTATION, Aggregate.SECRET, secret_id, roles=ROLES, steps=STEPS
    ) as run:
        holder, done = run.flow_run_id, None
        try:
            secret = await run(VALIDATE_SECRET_ROTATION, run.roles.control_plane, secret_id)
            done = Rotation(secret)
            started = run.event(EventName.SECRET_ROTATION_STARTED)
            await rotate(run, run.roles, done, holder, started)
        except Exception as exc:
            status = None
            if done is not None:
                status = await best_effort(
                    settle(run, run.roles, done, holder, exc),
                    f"settling the failed rotation of {secret_id}",
                )
            payload = {"secret_status": status.value if status else None}
            event = run.failure_event(EventName.SECRET_ROTATION_FAILED, exc, payload)
            rows = [
                ("secret", secret_id),
                ("secret status", status.value if status else "unchanged"),
            ]
            await run.fail(event, exc, f"Rotation of {secret_id} failed", rows)
            raise

        assert done.robot and done.stored
        robot, stored, bindings = done.robot, done.stored, done.bindings or []
        event = run.event(
            EventName.SECRET_ROTATION_COMPLETED,
            payload={
                "robot": robot.name,
                "stored_version": stored.version,
                "bindings": len(bindings),
            },
        )
        summary = [
            ("secret", secret_id),
            ("robot", robot.name),
            ("stored at", f"{stored.backend}:{stored.path} version {stored.version}"),
            (
                "bindings",
                ", ".join(f"{b.environment_id} -> {b.target}" for b in bindings) or "none",
            ),
        ]
        await run.succeed(event, f"Rotated {secret_id}", summary)
        return SecretRotationResult(
            flow_run_id=run.flow_run_id,
            secret_id=secret_id,
            status=SecretStatus.ACTIVE,
            robot=robot.name,
            stored=stored,
            bindings=bindings,
        )
