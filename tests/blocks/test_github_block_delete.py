"""``GitHubProvider.delete_repository_if_present`` (the undo of ``ensure_repository``)
against the GitHub sandbox, over real HTTP."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from blocks.github import GitHubProvider
from core.errors import DomainError, Forbidden, ResourceMismatch
from sandbox.github import GitHubSandbox
from sandbox.server import SandboxServer

_names = itertools.count(1)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[GitHubSandbox]:
    with GitHubSandbox() as server:
        yield server


@pytest.fixture(autouse=True)
def _reset(sandbox: GitHubSandbox) -> Iterator[None]:
    yield
    sandbox.server.faults.clear()
    sandbox.store.delete_repo_scope = True


@pytest.fixture
def github(sandbox: GitHubSandbox) -> GitHubProvider:
    return GitHubProvider(base_url=sandbox.api_url, token=sandbox.token, org="acme")


@pytest.fixture
def name() -> str:
    return f"appenv-undo-{next(_names)}"


def _listed(sandbox: GitHubSandbox, name: str) -> bool:
    return f"acme/{name}" in sandbox.state()["repos"]


def test_created_then_deleted_then_already_gone(
    github: GitHubProvider, sandbox: GitHubSandbox, name: str
) -> None:
    github.ensure_repository(name)
    with sandbox.recording() as exchanges:
        first = github.delete_repository_if_present(name)
    second = github.delete_repository_if_present(name)

    assert (first, second) == (True, False)
    assert not _listed(sandbox, name)
    assert [(e.method, e.path, e.status) for e in exchanges] == [
        ("GET", f"/api/v3/repos/acme/{name}", 200),
        ("DELETE", f"/api/v3/repos/acme/{name}", 204),
    ]
    assert github.ensure_repository(name).created is True  # the undo leaves no trace


def test_a_repository_that_never_existed_is_one_read_and_false(
    github: GitHubProvider, sandbox: GitHubSandbox
) -> None:
    with sandbox.recording() as exchanges:
        assert github.delete_repository_if_present("never-created") is False
    assert [(e.method, e.status) for e in exchanges] == [("GET", 404)]


def test_names_are_matched_as_github_does_regardless_of_case(
    github: GitHubProvider, sandbox: GitHubSandbox, name: str
) -> None:
    github.ensure_repository(name)
    assert github.delete_repository_if_present(name.upper()) is True
    assert not _listed(sandbox, name)


def test_a_token_that_may_not_delete_is_forbidden_and_nothing_changes(
    github: GitHubProvider, sandbox: GitHubSandbox, name: str
) -> None:
    github.ensure_repository(name)
    sandbox.store.delete_repo_scope = False
    with pytest.raises(Forbidden) as caught:
        github.delete_repository_if_present(name)

    error = caught.value
    assert (error.code, error.retryable, error.upstream_status) == ("forbidden", False, 403)
    assert "Must have admin rights" in error.message and sandbox.token not in str(error)
    assert error.__cause__ is None and error.__context__ is None
    assert _listed(sandbox, name)


def test_gone_between_the_read_and_the_delete_is_already_gone(
    github: GitHubProvider, sandbox: GitHubSandbox, name: str
) -> None:
    github.ensure_repository(name)
    sandbox.server.faults.add(method="DELETE", path=f"/repos/acme/{name}$", statuses=[404])
    assert github.delete_repository_if_present(name) is False


def test_a_failed_delete_is_retryable_and_the_retry_finishes_the_undo(
    github: GitHubProvider, sandbox: GitHubSandbox, name: str
) -> None:
    github.ensure_repository(name)
    sandbox.server.faults.add(method="DELETE", path=f"/repos/acme/{name}$", statuses=[503])
    with pytest.raises(DomainError) as caught:
        github.delete_repository_if_present(name)

    assert (caught.value.code, caught.value.retryable) == ("upstream_unavailable", True)
    assert _listed(sandbox, name)
    assert github.delete_repository_if_present(name) is True
    assert not _listed(sandbox, name)


# -- a repository GitHub now knows by another name (renamed or transferred) ----------------
def _renamed_github() -> SandboxServer:
    """Answers GET /repos/acme/old with the repository it became (what GitHub's 301 leads
    to) and records every DELETE."""
    deletes: list[str] = []

    async def get_repo(request: Request) -> Response:
        base = f"{request.url.scheme}://{request.url.netloc}"
        return JSONResponse(
            {
                "full_name": "acme/new",
                "name": "new",
                "url": f"{base}/api/v3/repos/acme/new",
                "html_url": f"{base}/acme/new",
                "default_branch": "main",
                "private": True,
            }
        )

    async def delete(request: Request) -> Response:
        deletes.append(request.url.path)
        return Response(status_code=204)

    routes = [
        Route("/api/v3/repos/acme/old", get_repo, methods=["GET"]),
        Route("/{path:path}", delete, methods=["DELETE"]),
    ]
    return SandboxServer("renamed-github", routes, lambda: {"deletes": deletes}, lambda s: {})


def test_a_renamed_repository_is_a_mismatch_and_is_not_deleted() -> None:
    with _renamed_github() as server:
        github = GitHubProvider(base_url=f"{server.url}/api/v3", token="t0ken-x", org="acme")
        with pytest.raises(ResourceMismatch) as caught:
            github.delete_repository_if_present("old")
        deletes = httpx.get(f"{server.url}/_sandbox/state", timeout=5).json()["deletes"]

    assert caught.value.details == {"repository": "acme/old", "found": "acme/new"}
    assert deletes == []
