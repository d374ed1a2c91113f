"""Body of ``/secrets/bindings/update``: bring every binding of a secret to a new value.

Where the new value comes from is the ``source``, one of three kinds, so each step of
the SecretRotation flow maps onto one call and the seed's one-call rotation too:

* ``harbor-rotation``: the service refreshes the Harbor robot's secret, stores it in its
  secret backend and points the bindings at it (seed 002). ``rotation_id`` makes it
  idempotent: the same id again replays the stored location instead of rotating twice.
* ``value``: the caller already holds a new value (a workflow's RotateSecret step) and
  sends it in; the service stores it once per (secret, value) and never returns it.
* ``stored``: the value is already stored; only the bindings move (UpdateSecretBindings).

No answer ever carries a secret value: responses name where it is stored.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, SecretStr

from blocks.models import BindingRecord, RobotAccount, StoredSecret
from services.platform.execution_workers.models.common import (
    EnvironmentId,
    Request,
    SecretName,
    Target,
)

# Harbor's rule for robot and project names.
HARBOR_NAME_PATTERN = r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$"
HarborName = Annotated[str, Field(pattern=HARBOR_NAME_PATTERN, max_length=255)]


class HarborRotation(Request):
    kind: Literal["harbor-rotation"]
    robot: HarborName = Field(description="Robot's short name (robot$<project>+<robot>)")
    project: HarborName | None = Field(None, description="Project of a project-level robot")
    rotation_id: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$",
        description="Caller's id of this rotation (e.g. its flow run): repeating it "
        "replays the first rotation's result instead of rotating again",
    )


class NewValue(Request):
    kind: Literal["value"]
    value: SecretStr = Field(
        min_length=1, max_length=4096, description="The new value; stored, never returned"
    )


class StoredRef(Request):
    backend: str = Field(min_length=1, max_length=64, pattern=r"\S")
    path: str = Field(min_length=1, max_length=512, pattern=r"\S")
    version: int = Field(ge=1)


class AlreadyStored(Request):
    kind: Literal["stored"]
    stored: StoredRef


Source = Annotated[HarborRotation | NewValue | AlreadyStored, Field(discriminator="kind")]


class BindingTarget(Request):
    environment_id: EnvironmentId
    target: Target


class BindingsUpdateRequest(Request):
    secret_id: SecretName
    source: Source
    bindings: list[BindingTarget] = Field(
        default_factory=list,
        max_length=500,
        description="Every binding of the secret; each ends up on the new version",
    )


class BindingsUpdateResult(BaseModel):
    secret_id: str
    stored: StoredSecret = Field(description="Where the new value is stored (never the value)")
    rotated: bool = Field(
        description="True when this call made the provider issue a new secret; false for "
        "other sources and for a replayed rotation_id"
    )
    robot: RobotAccount | None = Field(None, description="The rotated robot (harbor-rotation)")
    bindings: list[BindingRecord]
