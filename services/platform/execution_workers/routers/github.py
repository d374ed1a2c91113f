"""``/github/*``: repositories (seed 002's ``/github/repos``) and their initial files.

``/github/repos/files`` is not in the seed: it is the GitProvider's third operation
(``ensure_files``, used by ApplicationOnboarding), so that workflows routed through this
service need nothing else from GitHub. ``/github/repos/delete`` is the undo of
``/github/repos`` (``delete_repository_if_present``), for a provisioning that must roll back.
"""

from __future__ import annotations

from fastapi import APIRouter

from blocks.models import RepositoryInfo
from blocks.platform.domain import EventName
from blocks.ports import GitProvider
from services.platform.execution_workers.deps import OperationsDep, ProvidersDep
from services.platform.execution_workers.models import (
    FilesRequest,
    FilesResult,
    RepositoryDeleteRequest,
    RepositoryDeleteResult,
    RepositoryRequest,
)
from services.platform.execution_workers.providers import GIT
from services.platform.execution_workers.routers.common import SIDE_EFFECT_ERRORS, environment_of

router = APIRouter(prefix="/github", tags=["github"], responses=SIDE_EFFECT_ERRORS)


@router.post(
    "/repos",
    response_model=RepositoryInfo,
    summary="Ensure a repository exists (created, or adopted when it matches)",
)
def ensure_repository(
    body: RepositoryRequest, providers: ProvidersDep, operations: OperationsDep
) -> RepositoryInfo:
    environment = environment_of(body.name, body.environment_id)
    with operations.run(
        "execution_workers.ensure_repository",
        attributes={"repository": body.name, "environment_id": environment},
        event=EventName.APPENV_REPOSITORY,
        environments=[environment] if environment else [],
    ) as op:
        git: GitProvider = providers.require(GIT)
        op.uses(git)
        with op.downstream(git):
            info = git.ensure_repository(
                body.name, description=body.description, private=body.private
            )
        op.payload.update(repository=info.full_name, created=info.created)
    return info


@router.post(
    "/repos/delete",
    response_model=RepositoryDeleteResult,
    summary="Delete a repository if it exists (the undo of /github/repos; gone is success)",
)
def delete_repository(
    body: RepositoryDeleteRequest, providers: ProvidersDep, operations: OperationsDep
) -> RepositoryDeleteResult:
    environment = environment_of(body.name, body.environment_id)
    with operations.run(
        "execution_workers.delete_repository",
        attributes={"repository": body.name, "environment_id": environment},
        event=EventName.APPENV_REPOSITORY,
        environments=[environment] if environment else [],
        operation="delete",
    ) as op:
        git: GitProvider = providers.require(GIT)
        op.uses(git)
        with op.downstream(git):
            deleted = git.delete_repository_if_present(body.name)
        op.payload.update(repository=body.name, deleted=deleted)
    return RepositoryDeleteResult(repository=body.name, deleted=deleted)


@router.post(
    "/repos/files",
    response_model=FilesResult,
    summary="Ensure files exist on the default branch (missing ones created, others kept)",
)
def ensure_files(
    body: FilesRequest, providers: ProvidersDep, operations: OperationsDep
) -> FilesResult:
    with operations.run(
        "execution_workers.ensure_files", attributes={"repository": body.repository}
    ) as op:
        git: GitProvider = providers.require(GIT)
        op.uses(git)
        with op.downstream(git):
            created = git.ensure_files(body.repository, body.files, message=body.message)
    return FilesResult(repository=body.repository, created=created)
