"""Response bodies for git objects: commits, branches and file contents.

Split from ``github_bodies.py`` by resource; the same URL rules apply (``Links``).
"""

from __future__ import annotations

import base64
import posixpath
from typing import Any
from urllib.parse import quote

from sandbox.github_bodies import Links, node_id, simple_user
from sandbox.github_state import Account, Branch, Commit, FileEntry, Repo, git_sha


def _git_commit(links: Links, repo: Repo, commit: Commit) -> dict[str, Any]:
    person = {
        "name": commit.author,
        "email": f"{commit.author}@users.noreply.sandbox",
        "date": commit.date,
    }
    return {
        "url": f"{links.repo(repo)}/git/commits/{commit.sha}",
        "author": person,
        "committer": person,
        "message": commit.message,
        "tree": {"sha": commit.tree_sha, "url": f"{links.repo(repo)}/git/trees/{commit.tree_sha}"},
        "verification": {
            "verified": False,
            "reason": "unsigned",
            "signature": None,
            "payload": None,
            "verified_at": None,
        },
    }


def _parents(links: Links, repo: Repo, commit: Commit) -> list[dict[str, str]]:
    return [
        {
            "sha": sha,
            "url": f"{links.repo(repo)}/commits/{sha}",
            "html_url": f"{links.web}/{repo.full_name}/commit/{sha}",
        }
        for sha in commit.parents
    ]


def commit_body(links: Links, repo: Repo, commit: Commit, author: Account) -> dict[str, Any]:
    """The ``commit`` schema (REST commit, as embedded in a branch)."""
    return {
        "url": f"{links.repo(repo)}/commits/{commit.sha}",
        "sha": commit.sha,
        "node_id": node_id("Commit", int(commit.sha[:7], 16)),
        "html_url": f"{links.web}/{repo.full_name}/commit/{commit.sha}",
        "comments_url": f"{links.repo(repo)}/commits/{commit.sha}/comments",
        "commit": _git_commit(links, repo, commit) | {"comment_count": 0},
        "author": simple_user(links, author),
        "committer": simple_user(links, author),
        "parents": _parents(links, repo, commit),
    }


def git_commit_body(links: Links, repo: Repo, commit: Commit) -> dict[str, Any]:
    """The git-commit object the contents API returns under ``commit``."""
    return _git_commit(links, repo, commit) | {
        "sha": commit.sha,
        "node_id": node_id("Commit", int(commit.sha[:7], 16)),
        "html_url": f"{links.web}/{repo.full_name}/commit/{commit.sha}",
        "parents": _parents(links, repo, commit),
    }


def branch_with_protection(
    links: Links, repo: Repo, branch: Branch, author: Account
) -> dict[str, Any]:
    rule = branch.protection
    checks = (rule or {}).get("required_status_checks")
    level = (
        "off" if not checks else ("everyone" if rule and rule["enforce_admins"] else "non_admins")
    )
    return {
        "name": branch.name,
        "commit": commit_body(links, repo, repo.commits[branch.head], author),
        "_links": {
            "self": f"{links.repo(repo)}/branches/{quote(branch.name, safe='/')}",
            "html": f"{links.web}/{repo.full_name}/tree/{branch.name}",
        },
        "protected": rule is not None,
        "protection": {
            "enabled": rule is not None,
            "required_status_checks": {
                "enforcement_level": level,
                "contexts": checks["contexts"] if checks else [],
                "checks": checks["checks"] if checks else [],
            },
        },
        "protection_url": links.protection(repo, branch.name),
    }


def content_entry(
    links: Links, repo: Repo, ref: str, path: str, entry: FileEntry | None, *, with_content: bool
) -> dict[str, Any]:
    """A ``content-file`` (or a ``dir`` entry when ``entry`` is None)."""
    url = f"{links.repo(repo)}/contents/{quote(path)}?ref={quote(ref)}"
    kind = "file" if entry is not None else "dir"
    html = f"{links.web}/{repo.full_name}/{'blob' if entry else 'tree'}/{ref}/{path}"
    sha = entry.sha if entry is not None else git_sha("tree", path)
    git = f"{links.repo(repo)}/git/{'blobs' if entry else 'trees'}/{sha}"
    body: dict[str, Any] = {
        "type": kind,
        "name": posixpath.basename(path),
        "path": path,
        "sha": sha,
        "size": len(entry.content) if entry is not None else 0,
        "url": url,
        "html_url": html,
        "git_url": git,
        "download_url": f"{links.web}/{repo.full_name}/raw/{ref}/{path}" if entry else None,
        "_links": {"self": url, "git": git, "html": html},
    }
    if entry is not None and with_content:
        encoded = base64.b64encode(entry.content).decode()
        # GitHub wraps base64 content at 60 characters.
        body["content"] = "".join(encoded[i : i + 60] + "\n" for i in range(0, len(encoded), 60))
        body["encoding"] = "base64"
    return body


def directory_listing(
    links: Links, repo: Repo, ref: str, path: str, files: list[FileEntry]
) -> list[dict[str, Any]]:
    prefix = f"{path.strip('/')}/" if path.strip("/") else ""
    entries: dict[str, dict[str, Any]] = {}
    for entry in files:
        head = entry.path[len(prefix) :].split("/", 1)
        child = prefix + head[0]
        leaf = entry if len(head) == 1 else None
        entries.setdefault(child, content_entry(links, repo, ref, child, leaf, with_content=False))
    return [entries[k] for k in sorted(entries)]
