"""The control plane's sqlmodel models, in sets per aggregate: ``XBase`` (shared fields),
``XCreate`` (command body), ``X`` (the table) and ``XPublic`` (what the API returns).

Importing this package registers every table on ``SQLModel.metadata`` (alembic needs that).
"""

from services.platform.control_plane.models.application import (
    Application,
    ApplicationCreate,
    ApplicationPublic,
    ApplicationsPublic,
)
from services.platform.control_plane.models.compensation import (
    CompensationCreate,
    CompensationPublic,
    CompensationSettle,
    CompensationsPublic,
    WorkflowCompensation,
)
from services.platform.control_plane.models.environment import (
    ApplicationEnvironment,
    EnvironmentCreate,
    EnvironmentPublic,
    EnvironmentsPublic,
)
from services.platform.control_plane.models.event import (
    DomainEvent,
    DomainEventCreate,
    DomainEventPublic,
    DomainEventsPublic,
)
from services.platform.control_plane.models.idempotency import IdempotencyRecord
from services.platform.control_plane.models.secret import (
    LockRequest,
    LocksReleased,
    RotationPublic,
    RotationRecord,
    Secret,
    SecretBinding,
    SecretCreate,
    SecretProvider,
    SecretPublic,
    SecretsPublic,
)
from services.platform.control_plane.models.transition import (
    ApplicationTransition,
    EnvironmentTransition,
    SecretTransition,
)
from services.platform.control_plane.models.workflow_run import (
    RunResult,
    WorkflowRun,
    WorkflowRunPublic,
    WorkflowRunReport,
)

__all__ = [
    "Application",
    "ApplicationCreate",
    "ApplicationEnvironment",
    "ApplicationPublic",
    "ApplicationTransition",
    "ApplicationsPublic",
    "CompensationCreate",
    "CompensationPublic",
    "CompensationSettle",
    "CompensationsPublic",
    "DomainEvent",
    "DomainEventCreate",
    "DomainEventPublic",
    "DomainEventsPublic",
    "EnvironmentCreate",
    "EnvironmentPublic",
    "EnvironmentTransition",
    "EnvironmentsPublic",
    "IdempotencyRecord",
    "LockRequest",
    "LocksReleased",
    "RotationPublic",
    "RotationRecord",
    "RunResult",
    "Secret",
    "SecretBinding",
    "SecretCreate",
    "SecretProvider",
    "SecretPublic",
    "SecretTransition",
    "SecretsPublic",
    "WorkflowCompensation",
    "WorkflowRun",
    "WorkflowRunPublic",
    "WorkflowRunReport",
]
