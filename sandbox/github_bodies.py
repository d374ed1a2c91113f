"""Response bodies of the GitHub sandbox for accounts and repositories.

Every URL is built from the sandbox's own origin and prefix (``Links``): PyGithub follows
``url``/``protection_url`` values by path on its own connection and asserts host, port
and prefix (tests/contracts/specs/github-notes.md §1). ``html_url`` values drop the API
prefix, as on github.com. Bodies carry every property the contract schemas mark required,
including the ones GitHub's own examples forget (tests/contracts/specs/README.md). Git
objects (commits, branches, contents) are rendered in ``github_git.py``, protection in
``github_protection.py``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from sandbox.github_state import Account, Repo, git_sha


@dataclass(frozen=True)
class Links:
    """Where the sandbox is reachable: ``web`` is the origin, ``api`` adds the prefix."""

    web: str
    api: str

    def repo(self, repo: Repo) -> str:
        return f"{self.api}/repos/{repo.full_name}"

    def protection(self, repo: Repo, branch: str) -> str:
        return f"{self.repo(repo)}/branches/{quote(branch, safe='/')}/protection"


def node_id(kind: str, number: int) -> str:
    return base64.b64encode(f"0{len(kind)}:{kind}{number}".encode()).decode()


def simple_user(links: Links, account: Account, *, view: str = "public") -> dict[str, Any]:
    user = f"{links.api}/users/{account.login}"
    return {
        "login": account.login,
        "id": account.id,
        "node_id": node_id(account.type, account.id),
        "avatar_url": f"{links.web}/avatars/u/{account.id}",
        "gravatar_id": "",
        "url": user,
        "html_url": f"{links.web}/{account.login}",
        "followers_url": f"{user}/followers",
        "following_url": f"{user}/following{{/other_user}}",
        "gists_url": f"{user}/gists{{/gist_id}}",
        "starred_url": f"{user}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{user}/subscriptions",
        "organizations_url": f"{user}/orgs",
        "repos_url": f"{user}/repos",
        "events_url": f"{user}/events{{/privacy}}",
        "received_events_url": f"{user}/received_events",
        "type": account.type,
        "user_view_type": view,
        "site_admin": False,
    }


def named_user(login: str) -> Account:
    # Users and teams named in protection rules are not modelled; give them stable ids.
    return Account(login=login, id=int(git_sha(login)[:6], 16), type="User")


def private_user(links: Links, user: Account, *, repos: int) -> dict[str, Any]:
    """``GET /user``: the token's own profile (``user_view_type`` picks the oneOf branch)."""
    return simple_user(links, user, view="private") | {
        "name": "IDP sandbox",
        "company": None,
        "blog": "",
        "location": None,
        "email": None,
        "hireable": None,
        "bio": None,
        "twitter_username": None,
        "public_repos": 0,
        "public_gists": 0,
        "followers": 0,
        "following": 0,
        "created_at": user.created_at,
        "updated_at": user.created_at,
        "private_gists": 0,
        "total_private_repos": repos,
        "owned_private_repos": repos,
        "disk_usage": 0,
        "collaborators": 0,
        "two_factor_authentication": True,
        "plan": {
            "name": "enterprise",
            "space": 976562499,
            "private_repos": 9999,
            "collaborators": 0,
        },
    }


def organization_full(links: Links, org: Account, *, private: int, public: int) -> dict[str, Any]:
    base = f"{links.api}/orgs/{org.login}"
    return {
        "login": org.login,
        "id": org.id,
        "node_id": node_id("Organization", org.id),
        "url": base,
        "repos_url": f"{base}/repos",
        "events_url": f"{base}/events",
        "hooks_url": f"{base}/hooks",
        "issues_url": f"{base}/issues",
        "members_url": f"{base}/members{{/member}}",
        "public_members_url": f"{base}/public_members{{/member}}",
        "avatar_url": f"{links.web}/avatars/u/{org.id}",
        "description": None,
        "name": org.login,
        "is_verified": False,
        "has_organization_projects": True,
        "has_repository_projects": True,
        "public_repos": public,
        "public_gists": 0,
        "followers": 0,
        "following": 0,
        "html_url": f"{links.web}/{org.login}",
        "type": "Organization",
        "total_private_repos": private,
        "owned_private_repos": private,
        "default_repository_permission": "read",
        "default_repository_branch": "main",
        "members_can_create_repositories": True,
        "two_factor_requirement_enabled": True,
        "plan": {"name": "enterprise", "space": 976562499, "private_repos": 9999},
        "created_at": org.created_at,
        "updated_at": org.created_at,
        "archived_at": None,
    }


def full_repository(links: Links, repo: Repo) -> dict[str, Any]:
    api, web, full = links.repo(repo), f"{links.web}/{repo.full_name}", repo.full_name
    host = links.web.split("://", 1)[1]
    size = sum(len(f.content) for b in repo.branches.values() for f in b.files.values())
    body: dict[str, Any] = {
        "id": repo.id,
        "node_id": node_id("Repository", repo.id),
        "name": repo.name,
        "full_name": full,
        "owner": simple_user(links, repo.owner),
        "private": repo.private,
        "html_url": web,
        "description": repo.description,
        "fork": False,
        "url": api,
        "git_url": f"git://{host}/{full}.git",
        "ssh_url": f"git@{host.split(':')[0]}:{full}.git",
        "clone_url": f"{web}.git",
        "svn_url": web,
        "mirror_url": None,
        "homepage": repo.homepage,
        "language": None,
        "forks_count": 0,
        "forks": 0,
        "stargazers_count": 0,
        "watchers_count": 0,
        "watchers": 0,
        "size": size // 1024,
        "default_branch": repo.default_branch,
        "open_issues_count": 0,
        "open_issues": 0,
        "topics": [],
        "has_pages": False,
        "archived": False,
        "disabled": False,
        "visibility": "private" if repo.private else "public",
        "pushed_at": repo.pushed_at or repo.created_at,
        "created_at": repo.created_at,
        "updated_at": repo.pushed_at or repo.created_at,
        "permissions": {
            "admin": True,
            "maintain": True,
            "push": True,
            "triage": True,
            "pull": True,
        },
        "temp_clone_token": "",
        "allow_update_branch": False,
        "use_squash_pr_title_as_default": False,
        "squash_merge_commit_title": "COMMIT_OR_PR_TITLE",
        "squash_merge_commit_message": "COMMIT_MESSAGES",
        "merge_commit_title": "MERGE_MESSAGE",
        "merge_commit_message": "PR_TITLE",
        "allow_forking": True,
        "web_commit_signoff_required": False,
        "network_count": 0,
        "subscribers_count": 1,
        "license": None,
        "custom_properties": {},
    } | repo.settings
    for key, suffix in _REPO_LINKS.items():
        body[key] = f"{api}{suffix}"
    if repo.owner.type == "Organization":
        body["organization"] = simple_user(links, repo.owner)
    return body


_REPO_LINKS = {
    "archive_url": "/{archive_format}{/ref}",
    "assignees_url": "/assignees{/user}",
    "blobs_url": "/git/blobs{/sha}",
    "branches_url": "/branches{/branch}",
    "collaborators_url": "/collaborators{/collaborator}",
    "comments_url": "/comments{/number}",
    "commits_url": "/commits{/sha}",
    "compare_url": "/compare/{base}...{head}",
    "contents_url": "/contents/{+path}",
    "contributors_url": "/contributors",
    "deployments_url": "/deployments",
    "downloads_url": "/downloads",
    "events_url": "/events",
    "forks_url": "/forks",
    "git_commits_url": "/git/commits{/sha}",
    "git_refs_url": "/git/refs{/sha}",
    "git_tags_url": "/git/tags{/sha}",
    "hooks_url": "/hooks",
    "issue_comment_url": "/issues/comments{/number}",
    "issue_events_url": "/issues/events{/number}",
    "issues_url": "/issues{/number}",
    "keys_url": "/keys{/key_id}",
    "labels_url": "/labels{/name}",
    "languages_url": "/languages",
    "merges_url": "/merges",
    "milestones_url": "/milestones{/number}",
    "notifications_url": "/notifications{?since,all,participating}",
    "pulls_url": "/pulls{/number}",
    "releases_url": "/releases{/id}",
    "stargazers_url": "/stargazers",
    "statuses_url": "/statuses/{sha}",
    "subscribers_url": "/subscribers",
    "subscription_url": "/subscription",
    "tags_url": "/tags",
    "teams_url": "/teams",
    "trees_url": "/git/trees{/sha}",
}
