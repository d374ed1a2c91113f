"""In-memory state of the GitHub sandbox: accounts, repositories, branches, files.

GitHub's semantics live here (case-insensitive names, the 422 for a taken name,
``auto_init``, full-replace branch protection, create-only contents without ``sha``) so
the HTTP layer in ``github.py`` only parses requests and renders bodies. Every method
takes the store's lock: handlers run on uvicorn's loop while tests read ``snapshot()``
from their own thread.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

DOCS = "https://docs.github.com/rest"
DOC_CREATE_ORG_REPO = f"{DOCS}/repos/repos#create-an-organization-repository"
DOC_CREATE_USER_REPO = f"{DOCS}/repos/repos#create-a-repository-for-the-authenticated-user"
DOC_CONTENTS = f"{DOCS}/repos/contents#create-or-update-file-contents"
DOC_DELETE_REPO = f"{DOCS}/repos/repos#delete-a-repository"


class ApiError(Exception):
    """An answer GitHub would give instead of the resource (rendered as its error body)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        documentation_url: str = DOCS,
        errors: list[Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.documentation_url = documentation_url
        self.errors = errors

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "message": self.message,
            "documentation_url": self.documentation_url,
        }
        if self.errors is not None:
            body["errors"] = self.errors
        body["status"] = str(self.status)
        return body


def not_found(message: str = "Not Found", doc: str = DOCS) -> ApiError:
    return ApiError(404, message, documentation_url=doc)


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def git_sha(*parts: str | bytes) -> str:
    """A 40-hex id, like git's object names (not git's exact algorithm, except blobs)."""
    digest = hashlib.sha1(usedforsecurity=False)
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
    return digest.hexdigest()


@dataclass
class Account:
    login: str
    id: int
    type: str  # "User" or "Organization"
    created_at: str = field(default_factory=now_iso)


@dataclass
class FileEntry:
    path: str
    content: bytes

    @property
    def sha(self) -> str:
        # The real blob id, so clients that compute it locally agree with the sandbox.
        return git_sha(f"blob {len(self.content)}\0", self.content)


@dataclass
class Commit:
    sha: str
    message: str
    parents: list[str]
    tree_sha: str
    date: str
    author: str
    files: dict[str, FileEntry] = field(default_factory=dict)  # the tree at this commit


@dataclass
class Branch:
    name: str
    head: str
    files: dict[str, FileEntry] = field(default_factory=dict)
    protection: dict[str, Any] | None = None


@dataclass
class Repo:
    id: int
    owner: Account
    name: str
    private: bool
    description: str | None
    homepage: str | None
    default_branch: str
    created_at: str
    settings: dict[str, Any]
    branches: dict[str, Branch] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)
    pushed_at: str | None = None

    @property
    def full_name(self) -> str:
        return f"{self.owner.login}/{self.name}"


# Repository settings GitHub stores from the create body, with GitHub's defaults.
_REPO_SETTINGS = {
    "has_issues": True,
    "has_projects": True,
    "has_wiki": True,
    "has_downloads": True,
    "has_discussions": False,
    "is_template": False,
    "allow_squash_merge": True,
    "allow_merge_commit": True,
    "allow_rebase_merge": True,
    "allow_auto_merge": False,
    "delete_branch_on_merge": False,
}


class GitHubStore:
    """Accounts and repositories of one sandbox; the token's user owns every org."""

    def __init__(self, *, org: str, user: str) -> None:
        self.lock = threading.RLock()
        self.user = Account(login=user, id=1, type="User")
        self.accounts = {user.lower(): self.user, org.lower(): Account(org, 2, "Organization")}
        self.repos: dict[tuple[str, str], Repo] = {}
        self._next_id = 1000
        # The token's classic ``delete_repo`` scope; without it GitHub refuses deletes.
        self.delete_repo_scope = True

    def account(self, login: str, *, kind: str | None = None) -> Account:
        with self.lock:
            found = self.accounts.get(login.lower())
            if found is None or (kind is not None and found.type != kind):
                raise not_found()
            return found

    def create_repo(self, owner: Account, body: Any, *, doc: str) -> Repo:
        name = body.get("name") if isinstance(body, dict) else None
        if not isinstance(name, str) or not name.strip():
            raise ApiError(
                422,
                "Repository creation failed.",
                documentation_url=doc,
                errors=[{"resource": "Repository", "code": "missing_field", "field": "name"}],
            )
        visibility = body.get("visibility")
        private = bool(body.get("private", False)) or visibility in ("private", "internal")
        with self.lock:
            if (owner.login.lower(), name.lower()) in self.repos:
                raise ApiError(
                    422,
                    "Repository creation failed.",
                    documentation_url=doc,
                    errors=[
                        {
                            "resource": "Repository",
                            "code": "custom",
                            "field": "name",
                            "message": "name already exists on this account",
                        }
                    ],
                )
            self._next_id += 1
            settings = {k: bool(body.get(k, v)) for k, v in _REPO_SETTINGS.items()}
            repo = Repo(
                id=self._next_id,
                owner=owner,
                name=name,
                private=private,
                description=body.get("description") or None,
                homepage=body.get("homepage") or None,
                default_branch="main",
                created_at=now_iso(),
                settings=settings,
            )
            if body.get("auto_init"):
                readme = f"# {name}\n" + (f"\n{repo.description}\n" if repo.description else "")
                self._commit(repo, repo.default_branch, "Initial commit", {"README.md": readme})
            self.repos[(owner.login.lower(), name.lower())] = repo
            return repo

    def repo(self, owner: str, name: str) -> Repo:
        with self.lock:
            found = self.repos.get((owner.lower(), name.lower()))
            if found is None:
                raise not_found(doc=f"{DOCS}/repos/repos#get-a-repository")
            return found

    def delete_repo(self, owner: str, name: str) -> Repo:
        """``DELETE /repos/{owner}/{repo}``: 404 when absent, GitHub's 403 without scope."""
        with self.lock:
            key = (owner.lower(), name.lower())
            if key not in self.repos:
                raise not_found(doc=DOC_DELETE_REPO)
            if not self.delete_repo_scope:
                raise ApiError(
                    403, "Must have admin rights to Repository.", documentation_url=DOC_DELETE_REPO
                )
            return self.repos.pop(key)

    def branch(self, repo: Repo, name: str) -> Branch:
        with self.lock:
            found = repo.branches.get(name)
            if found is None:
                raise not_found("Branch not found", f"{DOCS}/branches/branches#get-a-branch")
            return found

    def create_ref(self, repo: Repo, body: dict[str, Any]) -> tuple[Branch, str]:
        """``POST /git/refs`` for branches: a new branch at an existing commit."""
        ref, sha = body.get("ref"), body.get("sha")
        doc = f"{DOCS}/git/refs#create-a-reference"
        if not isinstance(ref, str) or not ref.startswith("refs/") or ref.count("/") < 2:
            raise ApiError(422, "Reference name must start with 'refs/'", documentation_url=doc)
        if not ref.startswith("refs/heads/"):
            raise ApiError(422, "Only branch references are supported", documentation_url=doc)
        name = ref.removeprefix("refs/heads/")
        with self.lock:
            if not isinstance(sha, str) or sha not in repo.commits:
                raise ApiError(422, "Object does not exist", documentation_url=doc)
            if name in repo.branches:
                raise ApiError(422, "Reference already exists", documentation_url=doc)
            repo.branches[name] = Branch(name=name, head=sha, files=repo.commits[sha].files)
            return repo.branches[name], ref

    def protection(self, repo: Repo, branch_name: str) -> dict[str, Any]:
        with self.lock:
            branch = self.branch(repo, branch_name)
            if branch.protection is None:
                raise not_found(
                    "Branch not protected",
                    f"{DOCS}/branches/branch-protection#get-branch-protection",
                )
            return branch.protection

    def protect(self, repo: Repo, branch_name: str, rule: dict[str, Any]) -> dict[str, Any]:
        """PUT semantics: the new rule (from ``normalize_protection``) replaces the old one."""
        with self.lock:
            branch = self.branch(repo, branch_name)
            branch.protection = rule
            return rule

    def read_path(self, repo: Repo, path: str, ref: str | None) -> FileEntry | list[FileEntry]:
        """A file, or the files directly under a directory (what GET contents answers)."""
        with self.lock:
            if not repo.branches:
                raise not_found("This repository is empty.")
            branch = repo.branches.get(ref or repo.default_branch)
            if branch is None:
                raise not_found(f"No commit found for the ref {ref}")
            path = path.strip("/")
            if path in branch.files:
                return branch.files[path]
            prefix = f"{path}/" if path else ""
            children = [f for p, f in branch.files.items() if p.startswith(prefix)]
            if not children:
                raise not_found()
            return sorted(children, key=lambda f: f.path)

    def write_file(
        self, repo: Repo, path: str, body: Any, content: bytes
    ) -> tuple[bool, FileEntry, Commit]:
        """Create or update one file; GitHub's rule: updating needs the current blob sha."""
        path = path.strip("/")
        with self.lock:
            branch_name = body.get("branch") or repo.default_branch
            branch = repo.branches.get(branch_name)
            if branch is None and (repo.branches or branch_name != repo.default_branch):
                raise not_found(f"Branch {branch_name} not found", DOC_CONTENTS)
            existing = branch.files.get(path) if branch is not None else None
            sha = body.get("sha")
            if existing is not None and sha is None:
                raise ApiError(
                    422,
                    'Invalid request.\n\n"sha" wasn\'t supplied.',
                    documentation_url=DOC_CONTENTS,
                )
            if existing is not None and sha != existing.sha:
                raise ApiError(409, f"{path} does not match {sha}", documentation_url=DOC_CONTENTS)
            if existing is None and sha is not None:
                raise ApiError(422, f"{path} does not exist", documentation_url=DOC_CONTENTS)
            commit = self._commit(repo, branch_name, str(body["message"]), {path: content})
            return existing is None, repo.branches[branch_name].files[path], commit

    def _commit(
        self, repo: Repo, branch_name: str, message: str, changes: dict[str, str | bytes]
    ) -> Commit:
        branch = repo.branches.get(branch_name)
        files = dict(branch.files) if branch else {}
        for path, content in changes.items():
            data = content.encode() if isinstance(content, str) else content
            files[path] = FileEntry(path=path, content=data)
        tree = git_sha("tree", *(f"{p}:{f.sha}" for p, f in sorted(files.items())))
        parents = [branch.head] if branch else []
        date = now_iso()
        sha = git_sha("commit", tree, *parents, message, date, str(len(repo.commits)))
        repo.commits[sha] = Commit(sha, message, parents, tree, date, self.user.login, files)
        if branch is None:
            repo.branches[branch_name] = Branch(name=branch_name, head=sha, files=files)
        else:
            branch.head, branch.files = sha, files
        repo.pushed_at = date
        return repo.commits[sha]

    def snapshot(self) -> dict[str, Any]:
        """The JSON-able view served at ``/_sandbox/state``."""
        with self.lock:
            return {
                "user": self.user.login,
                "orgs": sorted(a.login for a in self.accounts.values() if a.type == "Organization"),
                "repos": {
                    repo.full_name: {
                        "id": repo.id,
                        "private": repo.private,
                        "description": repo.description,
                        "default_branch": repo.default_branch,
                        "branches": {
                            b.name: {"sha": b.head, "protected": b.protection is not None}
                            for b in repo.branches.values()
                        },
                        "protections": {
                            b.name: b.protection
                            for b in repo.branches.values()
                            if b.protection is not None
                        },
                        "files": {
                            b.name: {
                                p: f.content.decode("utf-8", errors="replace")
                                for p, f in sorted(b.files.items())
                            }
                            for b in repo.branches.values()
                        },
                    }
                    for repo in sorted(self.repos.values(), key=lambda r: r.full_name.lower())
                },
            }
