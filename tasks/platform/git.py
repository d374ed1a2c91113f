"""Repository steps: one GitProvider call each, retried on transient errors only.

Every step is an ``ensure``: running it again (a task retry, a retried flow run, a
second run of a completed workflow) adopts what exists instead of creating a twin.
Results are persisted with the default cache policy (inputs + source + flow-run id), so a
retried flow run returns them as ``Cached`` without calling GitHub again; the provider
block itself is left out of the cache key (it is configuration, and holds a token).
"""

from __future__ import annotations

from collections.abc import Mapping

from prefect import task

from blocks.models import BranchProtectionInfo, RepositoryInfo
from blocks.ports import GitProvider
from tasks.platform import provisioning_steps as steps
from tasks.platform.policy import in_thread, provider_task


@task(
    name="MaterializeRepositories",
    task_run_name="MaterializeRepositories[{name}]",
    **provider_task(),
)
async def ensure_repository(git: GitProvider, name: str, description: str = "") -> RepositoryInfo:
    """The repository ``name`` exists in the organization (created or adopted)."""
    return await steps.ensure_repository(git, name, description)


@task(
    name="ApplyBranchProtection",
    task_run_name="ApplyBranchProtection[{repository}]",
    **provider_task(),
)
async def ensure_branch_protection(
    git: GitProvider,
    repository: str,
    required_approving_review_count: int = 1,
    branch: str | None = None,
) -> BranchProtectionInfo:
    """``branch`` (the default branch when None) requires at least N approving reviews."""
    return await steps.ensure_branch_protection(
        git, repository, required_approving_review_count, branch=branch
    )


@task(
    name="SeedInitialConfiguration",
    task_run_name="SeedInitialConfiguration[{repository}]",
    **provider_task(),
)
async def ensure_files(
    git: GitProvider, repository: str, files: Mapping[str, str], message: str
) -> list[str]:
    """The files exist on the default branch (missing ones created; returns those paths)."""
    return await in_thread(git.ensure_files, repository, dict(files), message=message)
