"""SecretRotation (seed 001): rotate one secret in its provider and update its bindings.

Trigger: ``POST /api/v1/secrets/{id}/rotations`` on control-plane-api reserves the
secret's lock for the run it starts (``SecretRotation/idp``); the sweep rotates due
secrets with the same steps (``tasks.platform.rotation_steps``).

Steps: validate (rotatable, supported provider, may enter rotating) -> take the lock
(``secret_locked`` if another run holds it) -> mark rotating -> ``secret_rotation_started``
-> FindRobotAccount -> RotateSecret (Harbor refresh + store the value in the backend,
inside one task: the value never leaves it) -> UpdateSecretBindings -> MarkSecretRotated
-> release the lock -> ``workflow_secret_rotation_completed``. On failure the lock is
released and the secret's truthful state recorded (``rotation_failed``, or
``rotated_pending_bindings`` once the new value is stored), then ``_failed``. A
cancelled or crashed run only releases the lock (flow hooks).
"""

from __future__ import annotations

import asyncio
from typing import Any

from prefect import Flow, flow
from prefect.client.schemas.objects import FlowRun
from prefect.states import State

from blocks.platform.domain import WORKFLOW_SECRET_ROTATION, Aggregate, EventName, SecretStatus
from blocks.platform.workflows import SecretRotationRequest
from flows.platform.bookkeeping import WorkflowRun, best_effort
from flows.platform.providers import load_control_plane, load_registry, load_secret_backend
from flows.platform.results import SecretRotationResult
from tasks.platform.control_plane import record_domain_event
from tasks.platform.policy import in_thread
from tasks.platform.rotation import (
    acquire_secret_lock,
    find_robot_account,
    mark_secret_rotated,
    mark_secret_rotating,
    release_secret_lock,
    rotate_secret,
    settle_failed_rotation,
    update_secret_bindings,
    validate_secret_rotation,
)


async def release_lock_on_abort(flow: Flow[Any, Any], flow_run: FlowRun, state: State) -> None:
    """A cancelled or crashed run skips the failure path; it must not keep the lock.

    The secret stays ``rotating`` (its truth is unknown); the next rotation may proceed.
    """
    request = SecretRotationRequest.model_validate(flow_run.parameters["request"])
    control_plane = await load_control_plane()
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
    control_plane, registry, backend = await asyncio.gather(
        load_control_plane(), load_registry(), load_secret_backend()
    )
    secret_id = request.secret_id
    run = WorkflowRun.begin(WORKFLOW_SECRET_ROTATION, Aggregate.SECRET, secret_id)
    holder = run.flow_run_id
    rotating, stored = False, None
    try:
        secret = await validate_secret_rotation(control_plane, secret_id)
        await acquire_secret_lock(control_plane, secret_id, holder)
        await mark_secret_rotating(control_plane, secret_id, holder)
        rotating = True
        await record_domain_event(control_plane, run.event(EventName.SECRET_ROTATION_STARTED))
        robot = await find_robot_account(registry, secret.provider_ref, secret.project)
        stored = await rotate_secret(registry, backend, secret_id, robot)
        bindings = await update_secret_bindings(
            backend, secret_id, stored, secret.bindings, secret.stored
        )
        await mark_secret_rotated(control_plane, secret_id, holder, stored)
        await release_secret_lock(control_plane, secret_id, holder)
    except Exception as exc:
        status = await best_effort(
            settle_failed_rotation(control_plane, secret_id, holder, rotating, stored, exc),
            f"settling the failed rotation of {secret_id}",
        )
        payload = {"secret_status": status.value if status else None}
        event = run.failure_event(EventName.SECRET_ROTATION_FAILED, exc, payload)
        rows = [("secret", secret_id), ("secret status", status.value if status else "unchanged")]
        await run.fail(control_plane, event, exc, f"Rotation of {secret_id} failed", rows)
        raise

    result = SecretRotationResult(
        flow_run_id=run.flow_run_id,
        secret_id=secret_id,
        status=SecretStatus.ACTIVE,
        robot=robot.name,
        stored=stored,
        bindings=bindings,
    )
    event = run.event(
        EventName.SECRET_ROTATION_COMPLETED,
        payload={"robot": robot.name, "stored_version": stored.version, "bindings": len(bindings)},
    )
    summary = [
        ("secret", secret_id),
        ("robot", robot.name),
        ("stored at", f"{stored.backend}:{stored.path} version {stored.version}"),
        ("bindings", ", ".join(f"{b.environment_id} -> {b.target}" for b in bindings) or "none"),
    ]
    await run.succeed(control_plane, event, f"Rotated {secret_id}", summary)
    return result
