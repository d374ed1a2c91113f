"""The GitHub sandbox behaves like GitHub for unmodified PyGithub and for raw HTTP clients."""

from __future__ import annotations

import base64
import itertools
import time
from collections.abc import Iterator

import httpx
import pytest
from github import Auth, Github, GithubException, UnknownObjectException

from sandbox.github import GitHubSandbox

_names = itertools.count(1)
# edit_protection(required_approving_review_count=1), tests/contracts/specs/github-notes.md §2
OBSERVED_PUT = {
    "required_status_checks": None,
    "enforce_admins": None,
    "required_pull_request_reviews": {"required_approving_review_count": 1},
    "restrictions": None,
    "required_linear_history": None,
    "allow_force_pushes": None,
    "required_conversation_resolution": None,
    "lock_branch": None,
    "allow_fork_syncing": None,
    "block_creations": None,
    "allow_deletions": None,
}


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
def gh(sandbox: GitHubSandbox) -> Iterator[Github]:
    client = Github(
        base_url=sandbox.api_url,
        auth=Auth.Token(sandbox.token),
        retry=None,
        seconds_between_requests=0,
        seconds_between_writes=0,
    )
    yield client
    client.close()


@pytest.fixture
def http(sandbox: GitHubSandbox) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"token {sandbox.token}"}
    with httpx.Client(base_url=sandbox.api_url, headers=headers, timeout=5) as client:
        yield client


@pytest.fixture
def name() -> str:
    return f"appenv-{next(_names)}"


def test_pygithub_provisions_a_protected_repository(gh: Github, name: str) -> None:
    repo = gh.get_organization("acme").create_repo(name, private=True, auto_init=True)
    branch = repo.get_branch(repo.default_branch)
    branch.edit_protection(required_approving_review_count=1)

    protection = gh.get_repo(f"acme/{name}").get_branch("main").get_protection()
    assert protection.required_pull_request_reviews.required_approving_review_count == 1
    assert repo.private is True
    assert repo.default_branch == "main"


def test_create_answers_201_with_location_and_urls_on_the_sandbox(
    sandbox: GitHubSandbox, http: httpx.Client, name: str
) -> None:
    answer = http.post("/orgs/acme/repos", json={"name": name, "private": True})
    body = answer.json()

    assert answer.status_code == 201
    assert answer.headers["location"] == body["url"] == f"{sandbox.api_url}/repos/acme/{name}"
    assert body["html_url"] == f"{sandbox.url}/acme/{name}"
    assert body["full_name"] == f"acme/{name}" and body["visibility"] == "private"
    assert answer.headers["content-type"].startswith("application/json")


def test_taken_name_answers_githubs_422_whatever_the_case(http: httpx.Client, name: str) -> None:
    http.post("/orgs/acme/repos", json={"name": name})
    answer = http.post("/orgs/ACME/repos", json={"name": name.upper()})

    assert answer.status_code == 422
    assert answer.json() == {
        "message": "Repository creation failed.",
        "errors": [
            {
                "resource": "Repository",
                "code": "custom",
                "field": "name",
                "message": "name already exists on this account",
            }
        ],
        "documentation_url": "https://docs.github.com/rest/repos/repos#create-an-organization-repository",
        "status": "422",
    }


def test_names_are_case_insensitive_on_read(gh: Github, name: str) -> None:
    gh.get_organization("acme").create_repo(name)
    assert gh.get_repo(f"ACME/{name.upper()}").name == name


def test_missing_repository_is_a_404_basic_error(gh: Github) -> None:
    with pytest.raises(UnknownObjectException) as caught:
        gh.get_repo("acme/does-not-exist")
    assert caught.value.status == 404
    assert caught.value.data["message"] == "Not Found"


DELETE_DOCS = "https://docs.github.com/rest/repos/repos#delete-a-repository"


def test_delete_answers_204_and_the_repository_is_gone(
    sandbox: GitHubSandbox, http: httpx.Client, name: str
) -> None:
    http.post("/orgs/acme/repos", json={"name": name, "auto_init": True})
    answer = http.delete(f"/repos/ACME/{name.upper()}")  # names are case-insensitive

    assert (answer.status_code, answer.content) == (204, b"")
    assert answer.headers["x-ratelimit-remaining"]
    assert f"acme/{name}" not in httpx.get(f"{sandbox.url}/_sandbox/state").json()["repos"]
    assert http.get(f"/repos/acme/{name}").status_code == 404
    assert http.post("/orgs/acme/repos", json={"name": name}).status_code == 201  # reusable


def test_deleting_a_missing_repository_is_githubs_404(http: httpx.Client, name: str) -> None:
    http.post("/orgs/acme/repos", json={"name": name})
    assert http.delete(f"/repos/acme/{name}").status_code == 204
    again = http.delete(f"/repos/acme/{name}")

    assert again.status_code == 404
    assert again.json() == {
        "message": "Not Found",
        "documentation_url": DELETE_DOCS,
        "status": "404",
    }


def test_pygithub_deletes_and_then_sees_nothing(gh: Github, name: str) -> None:
    gh.get_organization("acme").create_repo(name, auto_init=True)
    gh.get_repo(f"acme/{name}").delete()
    with pytest.raises(UnknownObjectException):
        gh.get_repo(f"acme/{name}")


def test_without_the_delete_repo_scope_delete_is_githubs_403(
    sandbox: GitHubSandbox, http: httpx.Client, name: str
) -> None:
    http.post("/orgs/acme/repos", json={"name": name})
    sandbox.store.delete_repo_scope = False
    try:
        answer = http.delete(f"/repos/acme/{name}")
        missing = http.delete("/repos/acme/never-created")
    finally:
        sandbox.store.delete_repo_scope = True

    assert answer.status_code == 403
    assert answer.json() == {
        "message": "Must have admin rights to Repository.",
        "documentation_url": DELETE_DOCS,
        "status": "403",
    }
    assert missing.status_code == 404  # existence is checked first, as on GitHub
    assert f"acme/{name}" in sandbox.state()["repos"]


def test_recording_sees_every_204_before_the_client_does(
    sandbox: GitHubSandbox, http: httpx.Client
) -> None:
    """A 204 is complete with its headers: it must be recorded before they are sent, or a
    client's ``with recording()`` can close first (this flaked before the fix)."""
    names = [f"recorded-{next(_names)}" for _ in range(100)]
    for name in names:
        http.post("/orgs/acme/repos", json={"name": name})
    missed = []
    for name in names:
        with sandbox.recording() as exchanges:
            assert http.delete(f"/repos/acme/{name}").status_code == 204
        if [(e.method, e.status) for e in exchanges] != [("DELETE", 204)]:
            missed.append(name)
    assert missed == []


def test_delete_honours_auth_and_injected_faults(
    sandbox: GitHubSandbox, http: httpx.Client, name: str
) -> None:
    http.post("/orgs/acme/repos", json={"name": name})
    unauthenticated = httpx.delete(f"{sandbox.api_url}/repos/acme/{name}")
    sandbox.server.faults.add(method="DELETE", path=f"/repos/acme/{name}$", statuses=[503])
    failed = http.delete(f"/repos/acme/{name}")

    assert (unauthenticated.status_code, failed.status_code) == (401, 503)
    assert failed.json()["status"] == "503"
    assert f"acme/{name}" in sandbox.state()["repos"]
    assert http.delete(f"/repos/acme/{name}").status_code == 204


@pytest.mark.parametrize(
    "authorization, message",
    [
        ("token wrong", "Bad credentials"),
        ("Bearer wrong", "Bad credentials"),
        (None, "Requires authentication"),
    ],
)
def test_wrong_or_missing_token_is_401(
    sandbox: GitHubSandbox, authorization: str | None, message: str
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    answer = httpx.get(f"{sandbox.api_url}/user", headers=headers)
    assert answer.status_code == 401
    assert answer.json()["message"] == message


def test_bearer_token_is_accepted_and_user_has_a_view_type(sandbox: GitHubSandbox) -> None:
    answer = httpx.get(
        f"{sandbox.api_url}/user", headers={"Authorization": f"Bearer {sandbox.token}"}
    )
    assert answer.status_code == 200
    assert answer.json()["user_view_type"] == "private"


def test_user_repos_belong_to_the_token_user(gh: Github, name: str) -> None:
    repo = gh.get_user().create_repo(name)
    assert repo.owner.login == gh.get_user().login


def test_auto_init_creates_main_with_a_readme(gh: Github, name: str) -> None:
    repo = gh.get_organization("acme").create_repo(name, auto_init=True)
    readme = repo.get_contents("README.md", ref="main")
    assert not isinstance(readme, list)
    assert readme.decoded_content.decode().startswith(f"# {name}")


def test_without_auto_init_the_repository_has_no_branch(gh: Github, name: str) -> None:
    repo = gh.get_organization("acme").create_repo(name)
    with pytest.raises(UnknownObjectException) as caught:
        repo.get_branch("main")
    assert caught.value.data["message"] == "Branch not found"


def test_branch_names_may_contain_slashes(gh: Github, name: str) -> None:
    repo = gh.get_organization("acme").create_repo(name, auto_init=True)
    repo.create_git_ref("refs/heads/release/1.0", repo.get_branch("main").commit.sha)

    branch = repo.get_branch("release/1.0")
    branch.edit_protection(required_approving_review_count=2)

    assert branch.protection_url.endswith("/branches/release/1.0/protection")
    got = branch.get_protection().required_pull_request_reviews
    assert got.required_approving_review_count == 2


def test_unprotected_branch_answers_branch_not_protected(gh: Github, name: str) -> None:
    branch = gh.get_organization("acme").create_repo(name, auto_init=True).get_branch("main")
    with pytest.raises(GithubException) as caught:
        branch.get_protection()
    assert caught.value.status == 404
    assert caught.value.data["message"] == "Branch not protected"
    assert branch.protected is False


def test_protection_put_accepts_what_pygithub_sends(
    sandbox: GitHubSandbox, http: httpx.Client, name: str
) -> None:
    http.post("/orgs/acme/repos", json={"name": name, "auto_init": True})
    url = f"/repos/acme/{name}/branches/main/protection"

    with_nulls = http.put(url, json=OBSERVED_PUT)
    checks_only = http.put(
        url,
        json=OBSERVED_PUT
        | {"required_status_checks": {"strict": True, "checks": [{"context": "ci"}]}},
    )

    assert with_nulls.status_code == checks_only.status_code == 200
    assert checks_only.json()["required_status_checks"]["contexts"] == ["ci"]
    assert with_nulls.json()["url"] == f"{sandbox.api_url}{url}"


def test_protection_put_is_an_idempotent_full_replace(http: httpx.Client, name: str) -> None:
    http.post("/orgs/acme/repos", json={"name": name, "auto_init": True})
    url = f"/repos/acme/{name}/branches/main/protection"
    checks = {"strict": True, "contexts": ["ci/build"]}
    http.put(url, json=OBSERVED_PUT | {"required_status_checks": checks})

    first = http.put(url, json=OBSERVED_PUT)
    second = http.put(url, json=OBSERVED_PUT)

    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert "required_status_checks" not in http.get(url).json()


@pytest.mark.parametrize(
    "body",
    [
        {k: v for k, v in OBSERVED_PUT.items() if k != "restrictions"},
        OBSERVED_PUT | {"required_pull_request_reviews": {"required_approving_review_count": 7}},
        OBSERVED_PUT | {"required_status_checks": {"strict": True}},
        OBSERVED_PUT | {"lock_branch": "yes"},
    ],
    ids=["missing-restrictions", "seven-reviews", "checks-without-contexts", "non-boolean"],
)
def test_protection_put_rejects_what_github_rejects(
    http: httpx.Client, name: str, body: dict[str, object]
) -> None:
    http.post("/orgs/acme/repos", json={"name": name, "auto_init": True})
    answer = http.put(f"/repos/acme/{name}/branches/main/protection", json=body)
    assert answer.status_code == 422
    assert answer.json()["message"].startswith("Invalid request.")


def test_protecting_a_missing_branch_is_404(http: httpx.Client, name: str) -> None:
    http.post("/orgs/acme/repos", json={"name": name, "auto_init": True})
    answer = http.put(f"/repos/acme/{name}/branches/nope/protection", json=OBSERVED_PUT)
    assert answer.status_code == 404
    assert answer.json()["message"] == "Branch not found"


def test_contents_create_read_and_refuse_overwrite_without_sha(gh: Github, name: str) -> None:
    repo = gh.get_organization("acme").create_repo(name, auto_init=True)

    created = repo.create_file("docs/index.md", "add docs", "hello\n")
    read = repo.get_contents("docs/index.md")
    with pytest.raises(GithubException) as again:
        repo.create_file("docs/index.md", "add docs", "other\n")
    assert not isinstance(read, list)
    updated = repo.update_file("docs/index.md", "edit", "bye\n", read.sha)

    assert read.decoded_content == b"hello\n"
    assert read.sha == created["content"].sha
    assert again.value.status == 422 and "sha" in again.value.data["message"]
    assert updated["commit"].sha != created["commit"].sha
    assert [c.path for c in repo.get_contents("")] == ["README.md", "docs"]  # type: ignore[union-attr]


def test_missing_file_is_404(gh: Github, name: str) -> None:
    repo = gh.get_organization("acme").create_repo(name, auto_init=True)
    with pytest.raises(UnknownObjectException):
        repo.get_contents("nope.txt")


def test_contents_in_an_empty_repository(gh: Github, name: str, sandbox: GitHubSandbox) -> None:
    repo = gh.get_organization("acme").create_repo(name)
    with pytest.raises(GithubException) as empty:
        repo.get_contents("README.md")
    repo.create_file("README.md", "first", "# first\n")

    assert empty.value.data["message"] == "This repository is empty."
    assert sandbox.state()["repos"][f"acme/{name}"]["files"]["main"] == {"README.md": "# first\n"}


def test_contents_body_is_githubs_base64(http: httpx.Client, name: str) -> None:
    http.post("/orgs/acme/repos", json={"name": name, "auto_init": True})
    content = base64.b64encode(b"x" * 100).decode()
    put = http.put(f"/repos/acme/{name}/contents/a.txt", json={"message": "m", "content": content})
    got = http.get(f"/repos/acme/{name}/contents/a.txt").json()

    assert put.status_code == 201
    assert got["encoding"] == "base64" and got["size"] == 100
    assert base64.b64decode(got["content"]) == b"x" * 100
    assert all(len(line) <= 60 for line in got["content"].splitlines())


def test_every_response_carries_rate_limit_headers(
    sandbox: GitHubSandbox, http: httpx.Client
) -> None:
    sandbox.server.faults.add(statuses=[503], path="/orgs/acme$")
    answers = [http.get("/orgs/acme"), http.get("/repos/acme/nope"), http.get("/orgs/acme")]
    answers.append(httpx.get(f"{sandbox.api_url}/user", headers={"Authorization": "token no"}))

    assert [a.status_code for a in answers] == [503, 404, 200, 401]
    for answer in answers:
        assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"} <= set(
            answer.headers
        )
        assert answer.headers["x-ratelimit-resource"] == "core"
    assert int(answers[1].headers["x-ratelimit-remaining"]) < int(
        answers[0].headers["x-ratelimit-remaining"]
    )


def test_exhausted_rate_limit_answers_primary_limit_403(
    sandbox: GitHubSandbox, http: httpx.Client
) -> None:
    sandbox.rate_limit.set(remaining=0, reset_in=30)
    answer = http.get("/orgs/acme")

    assert answer.status_code == 403
    assert answer.json()["message"].startswith("API rate limit exceeded")
    assert answer.headers["x-ratelimit-remaining"] == "0"
    assert 0 < int(answer.headers["x-ratelimit-reset"]) - time.time() <= 31


def test_injected_faults_use_githubs_error_body(sandbox: GitHubSandbox, http: httpx.Client) -> None:
    sandbox.server.faults.add(statuses=[502, 200], path="/orgs/acme$")
    failed, passed = http.get("/orgs/acme"), http.get("/orgs/acme")

    assert failed.status_code == 502 and passed.status_code == 200
    assert failed.json() == {
        "message": "Bad Gateway",
        "documentation_url": "https://docs.github.com/rest",
        "status": "502",
    }


def test_unknown_paths_answer_json_404(http: httpx.Client) -> None:
    answer = http.delete("/orgs/acme/teams/x")
    assert answer.status_code == 404
    assert answer.json()["message"] == "Not Found"


def test_state_endpoint_shows_repos_branches_protections_and_files(
    sandbox: GitHubSandbox, gh: Github, name: str
) -> None:
    repo = gh.get_organization("acme").create_repo(name, private=True, auto_init=True)
    repo.get_branch("main").edit_protection(required_approving_review_count=1)

    state = httpx.get(f"{sandbox.url}/_sandbox/state").json()
    entry = state["repos"][f"acme/{name}"]

    assert state == sandbox.state()
    assert entry["private"] is True
    assert entry["branches"]["main"]["protected"] is True
    assert (
        entry["protections"]["main"]["required_pull_request_reviews"][
            "required_approving_review_count"
        ]
        == 1
    )
    assert list(entry["files"]["main"]) == ["README.md"]


def test_api_github_com_layout_has_no_prefix() -> None:
    with GitHubSandbox(prefix="") as server:
        client = Github(
            base_url=server.api_url,
            auth=Auth.Token(server.token),
            retry=None,
            seconds_between_requests=0,
            seconds_between_writes=0,
        )
        repo = client.get_organization("acme").create_repo("plain", auto_init=True)
        repo.get_branch("main").edit_protection(required_approving_review_count=1)
        client.close()

    assert server.api_url == server.url
    assert repo.url == f"{server.url}/repos/acme/plain"
