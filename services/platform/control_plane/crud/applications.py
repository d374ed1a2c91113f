"""Persistence of applications and their environments."""

from __future__ import annotations

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from blocks.platform.domain import ApplicationStatus, appenv_repository_name
from core.errors import Conflict, NotFound, PreconditionFailed
from services.platform.control_plane.models import (
    Application,
    ApplicationCreate,
    ApplicationEnvironment,
    EnvironmentCreate,
)


def create_application(*, session: Session, data: ApplicationCreate) -> Application:
    """Insert a registered application; ``Conflict`` when the name is taken."""
    if session.get(Application, data.name) is not None:
        raise Conflict(f"application {data.name} already exists", details={"id": data.name})
    application = Application(id=data.name, team=data.team, description=data.description)
    session.add(application)
    _flush_or_conflict(session, f"application {data.name} already exists", data.name)
    return application


def get_application(*, session: Session, application_id: str) -> Application:
    application = session.get(Application, application_id)
    if application is None:
        raise NotFound(
            f"application {application_id} does not exist", details={"id": application_id}
        )
    return application


def list_applications(
    *, session: Session, limit: int, offset: int
) -> tuple[list[Application], int]:
    total = session.exec(select(func.count()).select_from(Application)).one()
    rows = session.exec(
        select(Application).order_by(col(Application.id)).offset(offset).limit(limit)
    ).all()
    return list(rows), total


def create_environment(
    *, session: Session, application: Application, data: EnvironmentCreate
) -> ApplicationEnvironment:
    """Insert a requested environment of an onboarded application.

    ``PreconditionFailed`` (412) while the application is not onboarded yet;
    ``Conflict`` when the environment exists.
    """
    if application.status != ApplicationStatus.ONBOARDED:
        raise PreconditionFailed(
            f"application {application.id} is {application.status}, not onboarded",
            details={"application_id": application.id, "status": application.status},
        )
    environment_id = f"{application.id}-{data.name}"
    if session.get(ApplicationEnvironment, environment_id) is not None:
        raise Conflict(
            f"environment {environment_id} already exists", details={"id": environment_id}
        )
    environment = ApplicationEnvironment(
        id=environment_id,
        application_id=application.id,
        name=data.name,
        repository=appenv_repository_name(environment_id),
        secrets=list(dict.fromkeys(data.secrets)),
    )
    session.add(environment)
    _flush_or_conflict(session, f"environment {environment_id} already exists", environment_id)
    return environment


def get_environment(*, session: Session, environment_id: str) -> ApplicationEnvironment:
    environment = session.get(ApplicationEnvironment, environment_id)
    if environment is None:
        raise NotFound(
            f"environment {environment_id} does not exist", details={"id": environment_id}
        )
    return environment


def list_environments(*, session: Session, application_id: str) -> list[ApplicationEnvironment]:
    get_application(session=session, application_id=application_id)
    rows = session.exec(
        select(ApplicationEnvironment)
        .where(ApplicationEnvironment.application_id == application_id)
        .order_by(col(ApplicationEnvironment.id))
    ).all()
    return list(rows)


def _flush_or_conflict(session: Session, message: str, entity_id: str) -> None:
    # Two concurrent creates: the database's primary key decides who wins.
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(message, details={"id": entity_id}) from exc
