"""Bodies of ``/github/*``: repositories (ensure and delete) and their initial files."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from services.platform.execution_workers.models.common import EnvironmentId, RepositoryName, Request

# One path segment may start with a dot (".github") but is never "." or "..".
FILE_PATH_PATTERN = r"^\.?[A-Za-z0-9_-][A-Za-z0-9_.-]*(/\.?[A-Za-z0-9_-][A-Za-z0-9_.-]*)*$"
FilePath = Annotated[str, Field(pattern=FILE_PATH_PATTERN, max_length=255)]
FileContent = Annotated[str, Field(max_length=200_000)]


class RepositoryRequest(Request):
    name: RepositoryName
    description: str = Field("", max_length=350, description="Repository description")
    private: bool = Field(True, description="Visibility; an existing repo must match it")
    environment_id: EnvironmentId | None = Field(
        None,
        description="Environment the repository belongs to, for the appenv_repository "
        "event; derived from an appenv-<environment id> name when absent",
    )


class RepositoryDeleteRequest(Request):
    name: RepositoryName
    environment_id: EnvironmentId | None = Field(
        None,
        description="Environment the repository belongs to, for the appenv_repository "
        "event; derived from an appenv-<environment id> name when absent",
    )


class RepositoryDeleteResult(BaseModel):
    repository: str = Field(description="The name that was asked for")
    deleted: bool = Field(description="True when this call deleted it; false when it was gone")


class FilesRequest(Request):
    repository: RepositoryName
    files: dict[FilePath, FileContent] = Field(
        min_length=1, max_length=50, description="Path -> content; existing paths are kept"
    )
    message: str = Field(min_length=1, max_length=500, description="Commit message")


class FilesResult(BaseModel):
    repository: str
    created: list[str] = Field(description="Paths this call created (empty when all existed)")
