"""``/secrets/bindings/update`` (seed 002): after a rotation, every binding of a secret
points at the new value; with a ``harbor-rotation`` source the service rotates the Harbor
robot itself first. See ``models/secrets.py`` for the three sources and why.

The new value exists only inside ``_rotate`` (or the request, for a ``value`` source):
it is stored at once and only its location leaves; no event is reported here (the
SecretRotation workflow reports its own), and nothing returns or logs the value.
"""

from __future__ import annotations

from fastapi import APIRouter

from blocks.models import BindingSpec, RobotAccount, StoredSecret
from blocks.ports import RegistryProvider, SecretBindings, SecretStore
from core.errors import DomainError, PreconditionFailed, ResourceMismatch
from services.platform.execution_workers.deps import OperationsDep, ProvidersDep, StateDep
from services.platform.execution_workers.ledger import Ledger
from services.platform.execution_workers.models import (
    AlreadyStored,
    BindingsUpdateRequest,
    BindingsUpdateResult,
    HarborRotation,
    NewValue,
)
from services.platform.execution_workers.operations import Operation
from services.platform.execution_workers.providers import BINDINGS, REGISTRY, SECRETS
from services.platform.execution_workers.routers.common import SIDE_EFFECT_ERRORS

router = APIRouter(prefix="/secrets", tags=["secrets"], responses=SIDE_EFFECT_ERRORS)
# On a failed store after a refresh, consumers' old credential is already dead: say so.
STAGE_KEY = "rotation_stage"


@router.post(
    "/bindings/update",
    response_model=BindingsUpdateResult,
    summary="Point every binding of a secret at a new value (rotating it in Harbor if asked)",
)
def update_secret_bindings(
    body: BindingsUpdateRequest,
    providers: ProvidersDep,
    operations: OperationsDep,
    state: StateDep,
) -> BindingsUpdateResult:
    source = body.source
    environments = sorted({b.environment_id for b in body.bindings})
    ledger = state.ledger
    with operations.run(
        "execution_workers.update_secret_bindings",
        attributes={
            "secret_id": body.secret_id,
            "environment_id": ",".join(environments),
            "source": source.kind,
        },
    ) as op:
        backend: SecretStore = providers.require(SECRETS)
        op.uses(backend, "secret_backend")
        robot: RobotAccount | None = None
        rotated = replayed = False
        if isinstance(source, AlreadyStored):
            stored = StoredSecret(**source.stored.model_dump())
        elif isinstance(source, NewValue):
            value = source.value
            fingerprint = ledger.fingerprint(value.get_secret_value())

            def store() -> StoredSecret:
                with op.downstream(backend):
                    return backend.store_secret_value(body.secret_id, value)

            stored, replayed = ledger.once(("value", body.secret_id, fingerprint), store)
        else:
            registry: RegistryProvider = providers.require(REGISTRY)
            op.uses(registry)
            rotation = source
            # The whole source is the key: the same rotation_id for another robot rotates it.
            key = ("harbor-rotation", body.secret_id, source.model_dump_json())
            (robot, stored), replayed = ledger.once(
                key,
                lambda: _rotate(op, registry, backend, body.secret_id, rotation),
            )
            rotated = not replayed
        if not isinstance(source, AlreadyStored):
            _check_not_superseded(ledger, body.secret_id, stored, replayed)
        specs = [
            BindingSpec(environment_id=b.environment_id, target=b.target) for b in body.bindings
        ]
        bindings = []
        if specs:
            endpoints: SecretBindings = providers.require(BINDINGS)
            op.uses(endpoints)
            with op.downstream(endpoints):
                bindings = endpoints.update_secret_bindings(body.secret_id, stored, specs)
    return BindingsUpdateResult(
        secret_id=body.secret_id, stored=stored, rotated=rotated, robot=robot, bindings=bindings
    )


def _check_not_superseded(
    ledger: Ledger, secret_id: str, stored: StoredSecret, replayed: bool
) -> None:
    """A replayed store must not point bindings back at a value replaced since."""
    newest = ledger.highest((secret_id, stored.backend, stored.path), stored.version)
    if replayed and newest > stored.version:
        raise ResourceMismatch(
            f"secret {secret_id} was stored again (version {newest}) after version "
            f"{stored.version}; this request is stale",
            details={"secret_id": secret_id, "newest": newest, "replayed": stored.version},
        )


def _rotate(
    op: Operation,
    registry: RegistryProvider,
    backend: SecretStore,
    secret_id: str,
    rotation: HarborRotation,
) -> tuple[RobotAccount, StoredSecret]:
    """Find the robot, have Harbor issue a new secret, store it; only where it went leaves."""
    with op.downstream(registry):
        robot = registry.find_robot(rotation.robot, project=rotation.project)
    if robot.disabled:
        raise PreconditionFailed(f"robot {robot.name} is disabled", details={"robot": robot.name})
    op.span.set_attribute("idp.robot", robot.name)
    with op.downstream(registry):
        value = registry.refresh_robot_secret(robot.id)
    try:
        with op.downstream(backend):
            stored = backend.store_secret_value(secret_id, value)
    except DomainError as exc:
        exc.details[STAGE_KEY] = "store"
        raise
    return robot, stored
