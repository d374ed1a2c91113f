"""The GitHub sandbox and the GitHub block honour GitHub's published OpenAPI contract.

Both layouts are checked: api.github.com (no prefix, against the api.github.com spec)
and GitHub Enterprise Server 3.19 (``/api/v3``, against the GHES spec). Every response
the sandbox gives to a contracted operation, and every request the block sends, is
validated with openapi-core. The only relaxation is the one github-notes.md §2 documents:
PyGithub's ``null`` flags and ``checks`` without ``contexts`` in PUT branch protection.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from github import Auth, Github, GithubException
from openapi_core.validation.request.exceptions import InvalidRequestBody

from blocks.github import GitHubProvider
from core.errors import DomainError
from sandbox.github import GitHubSandbox
from sandbox.github_edge import Exchange
from tests.contracts.openapi_check import Contract, load_spec, relax_for_pygithub

LAYOUTS = {
    "api.github.com": ("github-openapi-subset.json", "", "https://api.github.com"),
    "ghes-3.19": ("github-ghes-3.19-openapi-subset.json", "/api/v3", None),
}


@dataclass
class Layout:
    sandbox: GitHubSandbox
    contract: Contract
    spec_file: str

    def pygithub(self) -> Github:
        return Github(
            base_url=self.sandbox.api_url,
            auth=Auth.Token(self.sandbox.token),
            retry=None,
            seconds_between_requests=0,
            seconds_between_writes=0,
        )

    def check_all(self, exchanges: list[Exchange], *, request_too: bool = True) -> set[str]:
        """Validate every contracted exchange; return the operations seen."""
        checked = {self.contract.check(e, request_too=request_too) for e in exchanges}
        return {op.key for op in checked if op is not None}


@pytest.fixture(scope="module", params=list(LAYOUTS), ids=list(LAYOUTS))
def layout(request: pytest.FixtureRequest) -> Iterator[Layout]:
    spec_file, prefix, host = LAYOUTS[request.param]
    with GitHubSandbox(prefix=prefix) as sandbox:
        # The api.github.com spec only knows its own server: map the sandbox's origin onto
        # it; the GHES server is a template ({protocol}://{hostname}/api/v3) that fits ours.
        contract = Contract(
            relax_for_pygithub(load_spec(spec_file)), prefix=prefix, host_url=host or sandbox.url
        )
        yield Layout(sandbox, contract, spec_file)


def all_operations(spec_file: str) -> set[str]:
    spec = load_spec(spec_file)
    return {
        f"{method.upper()} {path}"
        for path, item in spec["paths"].items()
        for method in item
        if method in ("get", "put", "post", "delete")
    }


def test_sandbox_answers_validate_for_every_operation(layout: Layout) -> None:
    """Success and documented error answers of all nine operations match the schemas."""
    with layout.sandbox.recording() as exchanges, layout.pygithub() as gh:
        org = gh.get_organization("acme")
        repo = org.create_repo("contract-a", private=True, auto_init=True)
        with pytest.raises(GithubException):
            org.create_repo("CONTRACT-A")  # 422 name already exists
        assert gh.get_user().login
        gh.get_user().create_repo("contract-mine", auto_init=True)
        gh.get_repo("acme/contract-a")
        with pytest.raises(GithubException):
            gh.get_repo("acme/contract-missing")  # 404
        repo.create_git_ref("refs/heads/team/feature", repo.get_branch("main").commit.sha)
        branch = repo.get_branch("team/feature")
        with pytest.raises(GithubException):
            branch.get_protection()  # 404 Branch not protected
        with pytest.raises(GithubException):
            repo.get_branch("missing")  # 404 Branch not found
        branch.edit_protection(required_approving_review_count=1)
        branch.edit_protection(
            strict=True,
            checks=["ci/build", ("ci/lint", 42)],
            enforce_admins=True,
            dismiss_stale_reviews=True,
            dismissal_users=["lead"],
            dismissal_teams=["core"],
            users_bypass_pull_request_allowances=["release-bot"],
            required_approving_review_count=2,
            user_push_restrictions=["release-bot"],
            team_push_restrictions=["core"],
            app_push_restrictions=["deployer"],
            required_linear_history=True,
            allow_deletions=False,
        )
        branch.get_protection()
        org.create_repo("contract-doomed").delete()
    headers = {"Authorization": f"token {layout.sandbox.token}"}
    repo_url = f"{layout.sandbox.api_url}/repos/acme"
    with layout.sandbox.recording() as errors:
        url = f"{layout.sandbox.api_url}/repos/acme/contract-a/branches/main/protection"
        assert httpx.put(url, json={"enforce_admins": None}, headers=headers).status_code == 422
        assert httpx.get(f"{layout.sandbox.api_url}/user").status_code == 401
        assert httpx.delete(f"{repo_url}/contract-doomed", headers=headers).status_code == 404
        layout.sandbox.store.delete_repo_scope = False
        try:
            assert httpx.delete(f"{repo_url}/contract-a", headers=headers).status_code == 403
        finally:
            layout.sandbox.store.delete_repo_scope = True

    seen = layout.check_all(exchanges) | layout.check_all(errors, request_too=False)

    assert seen == all_operations(layout.spec_file)
    statuses = {(e.method, e.status) for e in exchanges + errors}
    assert {("POST", 422), ("GET", 404), ("PUT", 422), ("GET", 401)} <= statuses
    assert {("DELETE", 204), ("DELETE", 404), ("DELETE", 403)} <= statuses


def test_block_requests_and_answers_validate(layout: Layout) -> None:
    github = GitHubProvider(base_url=layout.sandbox.api_url, token=layout.sandbox.token, org="acme")
    with layout.sandbox.recording() as exchanges:
        github.ensure_repository("contract-block", description="from the block")
        github.ensure_repository("contract-block", description="from the block")
        with pytest.raises(DomainError):
            github.ensure_repository("contract-block", private=False)
        github.ensure_branch_protection("contract-block")
        github.ensure_branch_protection("contract-block")
        github.ensure_branch_protection("contract-block", required_approving_review_count=3)
        github.ensure_files(
            "contract-block", {"catalog-info.yaml": "kind: Component\n"}, message="m"
        )
        github.get_repository("contract-block")
        assert github.delete_repository_if_present("contract-block") is True
        assert github.delete_repository_if_present("contract-block") is False

    seen = layout.check_all(exchanges)

    assert {
        "POST /orgs/{org}/repos",
        "GET /repos/{owner}/{repo}",
        "DELETE /repos/{owner}/{repo}",
        "GET /repos/{owner}/{repo}/branches/{branch}",
        "GET /repos/{owner}/{repo}/branches/{branch}/protection",
        "PUT /repos/{owner}/{repo}/branches/{branch}/protection",
    } <= seen


def test_block_sends_exactly_the_observed_protection_body(layout: Layout) -> None:
    """The block's PUT is byte-for-byte what PyGithub 2.10 was recorded sending."""
    flows = load_spec("github-pygithub-2.10-observed-requests.json")["flows"]
    observed = next(
        flow["requests"][0]
        for flow in flows
        if flow["call"] == "branch.edit_protection(required_approving_review_count=1)"
    )
    github = GitHubProvider(base_url=layout.sandbox.api_url, token=layout.sandbox.token, org="acme")
    github.ensure_repository("appenv-42")
    with layout.sandbox.recording() as exchanges:
        github.ensure_branch_protection("appenv-42")

    put = next(e for e in exchanges if e.method == "PUT")
    assert put.path == observed["path"].format(base_path=layout.contract.prefix)
    assert put.request_json() == observed["json_body"]
    assert put.request_headers["accept"] == observed["headers"]["Accept"]
    assert put.request_headers["authorization"] == f"token {layout.sandbox.token}"


def test_the_relaxation_is_needed(layout: Layout) -> None:
    """Without the documented exceptions the spec rejects PyGithub's body (so they matter)."""
    strict = Contract(
        load_spec(layout.spec_file),
        prefix=layout.contract.prefix,
        host_url=layout.contract.host_url,
    )
    with layout.pygithub() as gh, layout.sandbox.recording() as exchanges:
        repo = gh.get_organization("acme").create_repo("contract-strict", auto_init=True)
        repo.get_branch("main").edit_protection(required_approving_review_count=1)
    put = next(e for e in exchanges if e.method == "PUT")

    with pytest.raises(InvalidRequestBody):
        strict.check(put)
    assert layout.contract.check(put) is not None


def test_block_sends_exactly_the_observed_delete(layout: Layout) -> None:
    """The block's DELETE is the request PyGithub 2.10 was recorded sending for
    ``repo.delete()``: no body, ``Accept: */*``, the token."""
    flows = load_spec("github-pygithub-2.10-observed-requests.json")["flows"]
    [observed] = next(f["requests"] for f in flows if f["call"].startswith("repo.delete()"))
    github = GitHubProvider(base_url=layout.sandbox.api_url, token=layout.sandbox.token, org="acme")
    github.ensure_repository("appenv-42-undo")
    with layout.sandbox.recording() as exchanges:
        assert github.delete_repository_if_present("appenv-42-undo") is True

    [delete] = [e for e in exchanges if e.method == "DELETE"]
    expected_path = observed["path"].format(base_path=layout.contract.prefix)
    assert delete.path == expected_path.replace("appenv-42", "appenv-42-undo")
    assert delete.request_body == b"" and observed["json_body"] is None
    assert delete.request_headers["accept"] == observed["headers"]["Accept"]
    assert delete.request_headers["authorization"] == f"token {layout.sandbox.token}"
    assert "content-type" not in delete.request_headers
