"""Repository steps: one GitProvider call each.

Every step is an *ensure*: running it again (a task retry, a retried flow run, a second
run of a completed workflow) adopts what exists instead of creating a twin. They are
``effect`` steps, cached for the flow run, so a retried run replays them without calling
GitHub again (unless a compensation undid them: see ``core.steps.step``).
MaterializeRepositories declares its undo, DeleteRepository, which a compensation runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from blocks.models import BranchProtectionInfo, RepositoryInfo
from blocks.ports import GitProvider
from core.steps import Step, Undo
from tasks.platform.calls import in_thread
from tasks.platform.policies import PROVIDER


async def delete_repository(git: GitProvider, name: str) -> bool:
    """The repository ``name`` no longer exists (True when this call deleted it)."""
    return await in_thread(git.delete_repository_if_present, name)


async def materialize_repository(
    git: GitProvider, name: str, description: str = ""
) -> RepositoryInfo:
    """The private repository ``name`` exists in the organization (created or adopted)."""
    return await in_thread(git.ensure_repository, name, description=description, private=True)


async def apply_branch_protection(
    git: GitProvider,
    repository: str,
    required_approving_review_count: int = 1,
    branch: str | None = None,
) -> BranchProtectionInfo:
    """``branch`` of ``repository`` requires at least N approving reviews. Pass the default
    branch when it is known (the repository step returns it): the provider then need not
    read the repository to find it."""
    return await in_thread(
        git.ensure_branch_protection,
        repository,
        branch=branch,
        required_approving_review_count=required_approving_review_count,
    )


async def seed_initial_configuration(
    git: GitProvider, repository: str, files: Mapping[str, str], message: str
) -> list[str]:
    """The files exist on the default branch (missing ones created; returns those paths)."""
    return await in_thread(git.ensure_files, repository, dict(files), message=message)


def _undo_repository(result: RepositoryInfo, call: Mapping[str, Any]) -> dict[str, Any] | None:
    # Only a repository this run created is removed: an adopted one was there before.
    return {"name": result.name} if result.created else None


DELETE_REPOSITORY = Step(
    "DeleteRepository", delete_repository, PROVIDER, run_name="DeleteRepository[{name}]"
)
MATERIALIZE_REPOSITORIES = Step(
    "MaterializeRepositories",
    materialize_repository,
    PROVIDER,
    run_name="MaterializeRepositories[{name}]",
    undo=Undo(DELETE_REPOSITORY, _undo_repository),
)
APPLY_BRANCH_PROTECTION = Step(
    "ApplyBranchProtection",
    apply_branch_protection,
    PROVIDER,
    run_name="ApplyBranchProtection[{repository}]",
)
SEED_INITIAL_CONFIGURATION = Step(
    "SeedInitialConfiguration",
    seed_initial_configuration,
    PROVIDER,
    run_name="SeedInitialConfiguration[{repository}]",
)
