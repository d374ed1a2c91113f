"""Rows → the models the API returns (adds run links, bindings, the stored location)."""

from __future__ import annotations

from sqlmodel import Session

from blocks.models import BindingSpec, StoredSecret
from services.platform.control_plane.crud.secrets import bindings_of
from services.platform.control_plane.launcher import WorkflowLauncher
from services.platform.control_plane.models import (
    Application,
    ApplicationEnvironment,
    ApplicationPublic,
    CompensationPublic,
    DomainEvent,
    DomainEventPublic,
    EnvironmentPublic,
    Secret,
    SecretPublic,
    WorkflowCompensation,
)


def application_view(row: Application, launcher: WorkflowLauncher) -> ApplicationPublic:
    return ApplicationPublic.model_validate(
        row,
        update={"name": row.id, "last_flow_run_url": launcher.flow_run_url(row.last_flow_run_id)},
    )


def environment_view(row: ApplicationEnvironment, launcher: WorkflowLauncher) -> EnvironmentPublic:
    return EnvironmentPublic.model_validate(
        row, update={"last_flow_run_url": launcher.flow_run_url(row.last_flow_run_id)}
    )


def secret_view(*, session: Session, row: Secret, launcher: WorkflowLauncher) -> SecretPublic:
    stored = None
    if row.stored_backend and row.stored_path and row.stored_version is not None:
        stored = StoredSecret(
            backend=row.stored_backend, path=row.stored_path, version=row.stored_version
        )
    bindings = [
        BindingSpec(environment_id=b.environment_id, target=b.target)
        for b in bindings_of(session=session, secret_id=row.id)
    ]
    return SecretPublic.model_validate(
        row,
        update={
            "stored": stored,
            "bindings": bindings,
            "last_flow_run_url": launcher.flow_run_url(row.last_flow_run_id),
        },
    )


def event_view(row: DomainEvent) -> DomainEventPublic:
    return DomainEventPublic.model_validate(row)


def compensation_view(row: WorkflowCompensation) -> CompensationPublic:
    return CompensationPublic.model_validate(row, update={"done": row.done_at is not None})
