"""The GitHub provider block against the GitHub sandbox, over real HTTP."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import requests
from github import Auth, Github, GithubException
from pydantic import ValidationError

from blocks.github import GitHubProvider
from blocks.settings import GitHubSettings
from core.errors import DomainError, InvalidInput, RateLimited, ResourceMismatch
from sandbox.github import GitHubSandbox

_names = itertools.count(1)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[GitHubSandbox]:
    with GitHubSandbox() as server:
        yield server


@pytest.fixture(autouse=True)
def _reset(sandbox: GitHubSandbox) -> Iterator[None]:
    yield
    sandbox.server.faults.clear()
    sandbox.rate_limit.set(remaining=sandbox.rate_limit.limit)


@pytest.fixture
def github(sandbox: GitHubSandbox) -> GitHubProvider:
    return GitHubProvider(base_url=sandbox.api_url, token=sandbox.token, org="acme")


@pytest.fixture
def name() -> str:
    return f"appenv-{next(_names)}"


@pytest.fixture
def empty_repo(sandbox: GitHubSandbox, name: str) -> str:
    """A repository created without auto_init: no commit, no branch yet."""
    headers = {"Authorization": f"token {sandbox.token}"}
    answer = httpx.post(f"{sandbox.api_url}/orgs/acme/repos", json={"name": name}, headers=headers)
    assert answer.status_code == 201
    return name


def _pygithub(sandbox: GitHubSandbox) -> Github:
    """A plain PyGithub client, to set up state the way another tool would."""
    return Github(
        base_url=sandbox.api_url,
        auth=Auth.Token(sandbox.token),
        retry=None,
        seconds_between_requests=0,
        seconds_between_writes=0,
    )


def _protection(sandbox: GitHubSandbox, name: str, branch: str = "main") -> dict[str, Any]:
    url = f"{sandbox.api_url}/repos/acme/{name}/branches/{branch}/protection"
    answer = httpx.get(url, headers={"Authorization": f"token {sandbox.token}"})
    assert answer.status_code == 200
    return answer.json()


# -- ensure_repository ---------------------------------------------------------------------


def test_ensure_repository_twice_leaves_one_repository(
    github: GitHubProvider, sandbox: GitHubSandbox, name: str
) -> None:
    first = github.ensure_repository(name, description="app env")
    second = github.ensure_repository(name, description="app env")

    assert (first.created, second.created) == (True, False)
    assert first.model_dump(exclude={"created"}) == second.model_dump(exclude={"created"})
    assert [r for r in sandbox.state()["repos"] if r.lower() == f"acme/{name}"] == [f"acme/{name}"]
    assert first.private is True and first.default_branch == "main"
    assert first.html_url == f"{sandbox.url}/acme/{name}"


def test_adopting_a_repository_of_other_visibility_is_a_mismatch(
    github: GitHubProvider, name: str
) -> None:
    github.ensure_repository(name, private=True)
    with pytest.raises(ResourceMismatch) as caught:
        github.ensure_repository(name, private=False)
    assert caught.value.code == "resource_mismatch"
    assert caught.value.retryable is False


def test_get_repository_reports_an_existing_repository(github: GitHubProvider, name: str) -> None:
    github.ensure_repository(name)
    info = github.get_repository(name)
    assert info.full_name == f"acme/{name}" and info.created is False


# -- ensure_branch_protection --------------------------------------------------------------


def test_branch_protection_is_applied_once(
    github: GitHubProvider, sandbox: GitHubSandbox, name: str
) -> None:
    github.ensure_repository(name)
    first = github.ensure_branch_protection(name)
    with sandbox.recording() as exchanges:
        second = github.ensure_branch_protection(name)

    assert (first.changed, second.changed) == (True, False)
    assert second.branch == "main" and second.required_approving_review_count == 1
    assert [e.method for e in exchanges if e.method != "GET"] == []  # no write the second time
    reviews = _protection(sandbox, name)["required_pull_request_reviews"]
    assert reviews["required_approving_review_count"] >= 1


def test_a_new_repository_is_one_request(
    github: GitHubProvider, sandbox: GitHubSandbox, name: str
) -> None:
    with sandbox.recording() as exchanges:
        created = github.ensure_repository(name)
    assert created.created and created.default_branch == "main"
    assert [(e.method, e.path, e.status) for e in exchanges] == [
        ("POST", "/api/v3/orgs/acme/repos", 201)
    ]


def test_a_known_branch_is_protected_without_reading_the_repository(
    github: GitHubProvider, sandbox: GitHubSandbox, name: str
) -> None:
    repo = github.ensure_repository(name)
    with sandbox.recording() as exchanges:
        done = github.ensure_branch_protection(name, branch=repo.default_branch)
    assert done.changed and done.branch == "main"
    assert [(e.method, e.path.split(f"/{name}", 1)[1]) for e in exchanges] == [
        ("GET", "/branches/main"),
        ("PUT", "/branches/main/protection"),
    ]
    # Without the branch, the repository is read to find its default branch.
    with sandbox.recording() as exchanges:
        github.ensure_branch_protection(name)
    assert exchanges[0].method == "GET" and exchanges[0].path.endswith(f"/repos/acme/{name}")


def test_a_stricter_existing_rule_is_kept(github: GitHubProvider, name: str) -> None:
    github.ensure_repository(name)
    github.ensure_branch_protection(name, required_approving_review_count=2)
    again = github.ensure_branch_protection(name, required_approving_review_count=1)
    assert again.changed is False and again.required_approving_review_count == 2


def test_raising_the_review_count_keeps_the_rest_of_the_rule(
    github: GitHubProvider, sandbox: GitHubSandbox, name: str
) -> None:
    github.ensure_repository(name)
    with _pygithub(sandbox) as gh:
        gh.get_repo(f"acme/{name}").get_branch("main").edit_protection(
            strict=True,
            checks=["ci/build"],
            enforce_admins=True,
            dismiss_stale_reviews=True,
            required_approving_review_count=1,
            user_push_restrictions=["release-bot"],
            required_linear_history=True,
        )

    result = github.ensure_branch_protection(name, required_approving_review_count=2)
    rule = _protection(sandbox, name)

    assert result.changed is True
    assert rule["required_pull_request_reviews"]["required_approving_review_count"] == 2
    assert rule["required_pull_request_reviews"]["dismiss_stale_reviews"] is True
    assert rule["required_status_checks"]["contexts"] == ["ci/build"]
    assert rule["enforce_admins"]["enabled"] is True
    assert [u["login"] for u in rule["restrictions"]["users"]] == ["release-bot"]
    assert rule["required_linear_history"]["enabled"] is True


def test_named_branch_is_protected(
    github: GitHubProvider, sandbox: GitHubSandbox, name: str
) -> None:
    github.ensure_repository(name)
    with _pygithub(sandbox) as gh:
        repo = gh.get_repo(f"acme/{name}")
        repo.create_git_ref("refs/heads/release/1.x", repo.get_branch("main").commit.sha)

    info = github.ensure_branch_protection(name, branch="release/1.x")

    assert info.branch == "release/1.x" and info.changed is True
    assert _protection(sandbox, name, "release/1.x")["required_pull_request_reviews"]


def test_default_branch_not_readable_yet_is_retryable(
    github: GitHubProvider, sandbox: GitHubSandbox, name: str
) -> None:
    """GitHub notes §5: right after creation the default branch can 404 for a moment."""
    github.ensure_repository(name)
    sandbox.server.faults.add(method="GET", path=f"/{name}/branches/main$", statuses=[404])

    with pytest.raises(DomainError) as caught:
        github.ensure_branch_protection(name)
    retried = github.ensure_branch_protection(name)

    assert (caught.value.code, caught.value.retryable) == ("upstream_unavailable", True)
    assert caught.value.__context__ is None
    assert retried.changed is True


def test_missing_named_branch_is_not_found(github: GitHubProvider, name: str) -> None:
    github.ensure_repository(name)
    with pytest.raises(DomainError) as caught:
        github.ensure_branch_protection(name, branch="no-such-branch")
    assert (caught.value.code, caught.value.retryable) == ("not_found", False)


# -- ensure_files --------------------------------------------------------------------------


def test_ensure_files_creates_missing_files_once(
    github: GitHubProvider, sandbox: GitHubSandbox, empty_repo: str
) -> None:
    files = {"README.md": "# app\n", "catalog-info.yaml": "kind: Component\n"}

    first = github.ensure_files(empty_repo, files, message="Seed repository")
    second = github.ensure_files(empty_repo, files, message="Seed repository")

    assert first == ["README.md", "catalog-info.yaml"]
    assert second == []
    assert sandbox.state()["repos"][f"acme/{empty_repo}"]["files"]["main"] == files


def test_ensure_files_leaves_existing_files_alone(
    github: GitHubProvider, sandbox: GitHubSandbox, name: str
) -> None:
    github.ensure_repository(name)  # auto_init wrote README.md
    before = sandbox.state()["repos"][f"acme/{name}"]["files"]["main"]["README.md"]

    created = github.ensure_files(
        name, {"README.md": "replaced?\n", "catalog-info.yaml": "kind: Component\n"}, message="m"
    )

    assert created == ["catalog-info.yaml"]
    assert sandbox.state()["repos"][f"acme/{name}"]["files"]["main"]["README.md"] == before


# -- error contract ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status, code, retryable",
    [
        (403, "forbidden", False),
        (404, "not_found", False),
        (409, "conflict", False),
        (422, "invalid_input", False),
        (429, "rate_limited", True),
        (500, "upstream_unavailable", True),
        (502, "upstream_unavailable", True),
        (503, "upstream_unavailable", True),
    ],
)
def test_error_contract(
    github: GitHubProvider,
    sandbox: GitHubSandbox,
    name: str,
    status: int,
    code: str,
    retryable: bool,
) -> None:
    github.ensure_repository(name)
    sandbox.server.faults.add(path=f"/repos/acme/{name}$", statuses=[status])
    with pytest.raises(DomainError) as caught:
        github.get_repository(name)
    assert (caught.value.code, caught.value.retryable) == (code, retryable)
    assert caught.value.upstream_status == status


def test_wrong_token_is_unauthorized_and_never_echoed(sandbox: GitHubSandbox) -> None:
    github = GitHubProvider(base_url=sandbox.api_url, token="ghp_wrong-token", org="acme")
    with pytest.raises(DomainError) as caught:
        github.ensure_repository("anything")
    assert (caught.value.code, caught.value.retryable) == ("unauthorized", False)
    assert "ghp_wrong-token" not in str(caught.value) + repr(github)


def test_429_with_retry_after_is_rate_limited_for_that_long(
    github: GitHubProvider, sandbox: GitHubSandbox, name: str
) -> None:
    github.ensure_repository(name)
    sandbox.server.faults.add(path=f"/repos/acme/{name}$", statuses=[429], retry_after=17)
    with pytest.raises(RateLimited) as caught:
        github.get_repository(name)
    assert caught.value.retry_after == 17


def test_403_with_exhausted_primary_limit_is_rate_limited_until_reset(
    github: GitHubProvider, sandbox: GitHubSandbox
) -> None:
    sandbox.rate_limit.set(remaining=0, reset_in=120)
    with pytest.raises(RateLimited) as caught:
        github.get_repository("anything")
    assert caught.value.code == "rate_limited" and caught.value.upstream_status == 403
    assert caught.value.retry_after is not None and 110 < caught.value.retry_after <= 120


def test_slow_github_is_an_upstream_timeout(sandbox: GitHubSandbox, name: str) -> None:
    github = GitHubProvider(
        base_url=sandbox.api_url, token=sandbox.token, org="acme", timeout_seconds=1
    )
    github.ensure_repository(name)
    sandbox.server.faults.add(path=f"/repos/acme/{name}$", latency_ms=1500, times=1)
    with pytest.raises(DomainError) as caught:
        github.get_repository(name)
    assert (caught.value.code, caught.value.retryable) == ("upstream_timeout", True)


def test_refused_connection_is_upstream_unavailable(
    github: GitHubProvider, sandbox: GitHubSandbox
) -> None:
    sandbox.server.refuse_connections(0.5)
    try:
        with pytest.raises(DomainError) as caught:
            github.get_repository("anything")
    finally:
        _wait_until_listening(sandbox)
    assert (caught.value.code, caught.value.retryable) == ("upstream_unavailable", True)


def _wait_until_listening(sandbox: GitHubSandbox) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{sandbox.url}/_sandbox/state", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError("sandbox did not come back")


def test_scripted_503s_fail_retryably_then_succeed(
    github: GitHubProvider, sandbox: GitHubSandbox, name: str
) -> None:
    github.ensure_repository(name)
    sandbox.server.faults.add(path=f"/repos/acme/{name}$", statuses=[503, 503, 200])
    outcomes: list[str] = []
    for _ in range(3):
        try:
            outcomes.append(github.get_repository(name).full_name)
        except DomainError as exc:
            assert exc.retryable
            outcomes.append(exc.code)
    assert outcomes == ["upstream_unavailable", "upstream_unavailable", f"acme/{name}"]


def test_prefect_is_the_only_retry_layer(
    github: GitHubProvider, sandbox: GitHubSandbox, name: str
) -> None:
    """PyGithub would retry a 503 ten times (and throttle); the block sends one request."""
    github.ensure_repository(name)
    sandbox.server.faults.add(path=f"/repos/acme/{name}$", statuses=[503, 503])
    started = time.monotonic()
    with sandbox.recording() as exchanges, pytest.raises(DomainError):
        github.get_repository(name)
    assert [e.status for e in exchanges] == [503]
    assert time.monotonic() - started < 1


def _operations(name: str) -> dict[str, Callable[[GitHubProvider], object]]:
    return {
        "ensure_repository": lambda g: g.ensure_repository(name),
        "ensure_branch_protection": lambda g: g.ensure_branch_protection(name),
        "ensure_files": lambda g: g.ensure_files(name, {"new.txt": "x"}, message="m"),
        "get_repository": lambda g: g.get_repository(name),
        "delete_repository_if_present": lambda g: g.delete_repository_if_present(name),
    }


# The HTTP methods each operation sends, so every request it makes can be made to fail.
_SENDS = {
    "ensure_repository": ["GET", "POST"],
    "ensure_branch_protection": ["GET", "PUT"],
    "ensure_files": ["GET", "PUT"],
    "get_repository": ["GET"],
    "delete_repository_if_present": ["GET", "DELETE"],
}


@pytest.mark.parametrize(
    "operation, method", [(op, m) for op, methods in _SENDS.items() for m in methods]
)
@pytest.mark.parametrize("status", [400, 403, 404, 409, 422, 429, 451, 500])
def test_no_vendor_exception_escapes(
    github: GitHubProvider,
    sandbox: GitHubSandbox,
    name: str,
    operation: str,
    method: str,
    status: int,
) -> None:
    """Whatever request fails, callers see a DomainError (or a handled, successful ensure)."""
    github.ensure_repository(name)
    sandbox.server.faults.add(method=method, path=f"/acme/{name}", statuses=[status])
    try:
        _operations(name)[operation](github)
    except DomainError as exc:
        assert exc.__cause__ is None and exc.__context__ is None
    except (GithubException, requests.RequestException, AssertionError) as exc:
        pytest.fail(f"{operation} leaked {type(exc).__name__} on {method} {status}")
    assert sandbox.server.faults.injected.get(status), "the fault was never hit"


@pytest.mark.parametrize("operation", ["ensure_branch_protection", "ensure_files"])
def test_pygithub_assertion_is_upstream_rejected(sandbox: GitHubSandbox, operation: str) -> None:
    """PyGithub asserts response URLs are on its own host (GHES notes §1); no leak.
    (``ensure_repository`` follows no URL from a response, so it is not affected.)"""
    name = "foreign-host"
    GitHubProvider(base_url=sandbox.api_url, token=sandbox.token, org="acme").ensure_repository(
        name
    )
    elsewhere = sandbox.api_url.replace("127.0.0.1", "localhost")
    github = GitHubProvider(base_url=elsewhere, token=sandbox.token, org="acme")
    with pytest.raises(DomainError) as caught:
        _operations(name)[operation](github)
    assert caught.value.code == "upstream_rejected"


# -- configuration -------------------------------------------------------------------------


def test_from_env_reads_the_platform_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_API_URL", "https://ghe.example.com/api/v3/")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_from_env")
    monkeypatch.setenv("GITHUB_ORG", "platform")

    github = GitHubProvider.from_env()

    assert github.base_url == "https://ghe.example.com/api/v3"
    assert github.token.get_secret_value() == "ghp_from_env" and github.org == "platform"
    assert "ghp_from_env" not in repr(github)


@pytest.mark.parametrize("missing", ["GITHUB_API_URL", "GITHUB_TOKEN", "GITHUB_ORG"])
def test_from_env_names_the_missing_variable(missing: str) -> None:
    values = {"GITHUB_API_URL": "https://api.github.com", "GITHUB_TOKEN": "t", "GITHUB_ORG": "o"}
    values[missing] = ""
    with pytest.raises(InvalidInput) as caught:
        GitHubProvider.from_env(GitHubSettings(**values))  # type: ignore[arg-type]
    assert caught.value.details["variable"] == missing
    assert missing in caught.value.message


def test_base_url_must_be_http() -> None:
    with pytest.raises(ValidationError):
        GitHubProvider(base_url="api.github.com", token="t", org="o")


def test_block_type_does_not_clash_with_prefect_github() -> None:
    assert GitHubProvider.get_block_type_slug() == "idp-github"
    assert GitHubProvider.get_block_type_name() not in ("GitHub Credentials", "GitHub Repository")
