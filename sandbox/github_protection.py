"""Validation of ``PUT …/branches/{branch}/protection`` bodies, as GitHub accepts them.

The spec says more than GitHub enforces and less than PyGithub sends: PyGithub sends
``null`` for every optional key it was not given (the spec types most of them as plain
booleans) and ``required_status_checks.checks`` without ``contexts`` (the spec lists
``contexts`` as required). GitHub accepts both, so the sandbox does too (see
tests/contracts/specs/github-notes.md §2). What GitHub does reject — a missing required key, a
review count outside 0..6, a wrong type — answers 422 like GitHub.
"""

from __future__ import annotations

from typing import Any

from sandbox.github_bodies import Links, named_user, node_id, simple_user
from sandbox.github_state import Account, ApiError, Repo, git_sha

DOC = "https://docs.github.com/rest/branches/branch-protection#update-branch-protection"
REQUIRED_KEYS = (
    "required_status_checks",
    "enforce_admins",
    "required_pull_request_reviews",
    "restrictions",
)
FLAGS = (
    "required_linear_history",
    "allow_force_pushes",
    "allow_deletions",
    "block_creations",
    "required_conversation_resolution",
    "lock_branch",
    "allow_fork_syncing",
)


def _invalid(detail: str) -> ApiError:
    return ApiError(422, f"Invalid request.\n\n{detail}", documentation_url=DOC)


def _flag(body: dict[str, Any], key: str) -> bool:
    value = body.get(key)
    if value is not None and not isinstance(value, bool):
        raise _invalid(f"For 'properties/{key}', {value!r} is not a boolean or null.")
    return bool(value)


def _names(obj: Any, key: str, where: str, *, required: bool = False) -> list[str]:
    if not isinstance(obj, dict) or (required and key not in obj):
        raise _invalid(f'"{key}" wasn\'t supplied in "{where}".')
    values = obj.get(key, [])
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise _invalid(f"For 'properties/{key}', {values!r} is not an array of strings.")
    return list(values)


def _actors(obj: Any, where: str, *, required: tuple[str, ...] = ()) -> dict[str, list[str]]:
    return {k: _names(obj, k, where, required=k in required) for k in ("users", "teams", "apps")}


def _status_checks(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _invalid("For 'properties/required_status_checks', it is not an object or null.")
    if "contexts" not in value and "checks" not in value:
        raise _invalid('"contexts" wasn\'t supplied.')
    checks: list[dict[str, Any]] = []
    for check in value.get("checks") or []:
        if not isinstance(check, dict) or not isinstance(check.get("context"), str):
            raise _invalid('"context" wasn\'t supplied in "checks".')
        checks.append({"context": check["context"], "app_id": check.get("app_id")})
    for context in _names(value, "contexts", "required_status_checks"):
        if all(c["context"] != context for c in checks):
            checks.append({"context": context, "app_id": None})
    return {
        "strict": bool(value.get("strict", False)),
        "contexts": [c["context"] for c in checks],
        "checks": checks,
    }


def _reviews(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _invalid(
            "For 'properties/required_pull_request_reviews', it is not an object or null."
        )
    count = value.get("required_approving_review_count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= 6:
        raise _invalid(
            f"For 'properties/required_approving_review_count', {count!r} is not between 0 and 6."
        )
    reviews: dict[str, Any] = {
        "dismiss_stale_reviews": _flag(value, "dismiss_stale_reviews"),
        "require_code_owner_reviews": _flag(value, "require_code_owner_reviews"),
        "required_approving_review_count": count,
        "require_last_push_approval": _flag(value, "require_last_push_approval"),
    }
    for key in ("dismissal_restrictions", "bypass_pull_request_allowances"):
        if value.get(key) is not None:
            reviews[key] = _actors(value[key], key)
    return reviews


def normalize_protection(body: Any) -> dict[str, Any]:
    """The stored rule for a PUT body: every key explicit, ``null`` flags become false."""
    if not isinstance(body, dict):
        raise _invalid("Body should be a JSON object.")
    for key in REQUIRED_KEYS:
        if key not in body:
            raise _invalid(f'"{key}" wasn\'t supplied.')
    enforce_admins = body["enforce_admins"]
    if enforce_admins is not None and not isinstance(enforce_admins, bool):
        raise _invalid("For 'properties/enforce_admins', it is not a boolean or null.")
    restrictions = body["restrictions"]
    rule: dict[str, Any] = {
        "required_status_checks": _status_checks(body["required_status_checks"]),
        "enforce_admins": bool(enforce_admins),
        "required_pull_request_reviews": _reviews(body["required_pull_request_reviews"]),
        "restrictions": None
        if restrictions is None
        else _actors(restrictions, "restrictions", required=("users", "teams")),
    }
    for key in FLAGS:
        rule[key] = _flag(body, key)
    return rule


# -- rendering ---------------------------------------------------------------------------


def _team(links: Links, org: Account, slug: str) -> dict[str, Any]:
    team_id = int(git_sha(org.login, slug)[:6], 16)
    base = f"{links.api}/organizations/{org.id}/team/{team_id}"
    return {
        "id": team_id,
        "node_id": node_id("Team", team_id),
        "url": base,
        "html_url": f"{links.web}/orgs/{org.login}/teams/{slug}",
        "name": slug,
        "slug": slug,
        "description": None,
        "privacy": "closed",
        "notification_setting": "notifications_enabled",
        "permission": "push",
        "members_url": f"{base}/members{{/member}}",
        "repositories_url": f"{base}/repos",
        "parent": None,
        "type": "organization",
    }


def _app(links: Links, org: Account, slug: str) -> dict[str, Any]:
    app_id = int(git_sha("app", slug)[:6], 16)
    return {
        "id": app_id,
        "slug": slug,
        "node_id": node_id("Integration", app_id),
        "owner": simple_user(links, org),
        "name": slug,
        "description": "",
        "external_url": f"{links.web}/apps/{slug}",
        "html_url": f"{links.web}/apps/{slug}",
        "created_at": org.created_at,
        "updated_at": org.created_at,
        "permissions": {},
        "events": [],
    }


def _render_actors(links: Links, org: Account, names: dict[str, list[str]]) -> dict[str, Any]:
    return {
        "users": [simple_user(links, named_user(login)) for login in names["users"]],
        "teams": [_team(links, org, slug) for slug in names["teams"]],
        "apps": [_app(links, org, slug) for slug in names["apps"]],
    }


def protection_body(links: Links, repo: Repo, branch: str, rule: dict[str, Any]) -> dict[str, Any]:
    """One body for GET and PUT: valid as ``branch-protection`` and ``protected-branch``."""
    base = links.protection(repo, branch)
    body: dict[str, Any] = {"url": base}
    checks = rule["required_status_checks"]
    if checks is not None:
        body["required_status_checks"] = checks | {
            "url": f"{base}/required_status_checks",
            "contexts_url": f"{base}/required_status_checks/contexts",
        }
    reviews = rule["required_pull_request_reviews"]
    if reviews is not None:
        rendered = dict(reviews) | {"url": f"{base}/required_pull_request_reviews"}
        if "dismissal_restrictions" in reviews:
            rendered["dismissal_restrictions"] = _render_actors(
                links, repo.owner, reviews["dismissal_restrictions"]
            ) | {
                "url": f"{base}/dismissal_restrictions",
                "users_url": f"{base}/dismissal_restrictions/users",
                "teams_url": f"{base}/dismissal_restrictions/teams",
            }
        if "bypass_pull_request_allowances" in reviews:
            rendered["bypass_pull_request_allowances"] = _render_actors(
                links, repo.owner, reviews["bypass_pull_request_allowances"]
            )
        body["required_pull_request_reviews"] = rendered
    body["required_signatures"] = {"url": f"{base}/required_signatures", "enabled": False}
    body["enforce_admins"] = {"url": f"{base}/enforce_admins", "enabled": rule["enforce_admins"]}
    if rule["restrictions"] is not None:
        body["restrictions"] = _render_actors(links, repo.owner, rule["restrictions"]) | {
            "url": f"{base}/restrictions",
            "users_url": f"{base}/restrictions/users",
            "teams_url": f"{base}/restrictions/teams",
            "apps_url": f"{base}/restrictions/apps",
        }
    for key in FLAGS:
        body[key] = {"enabled": rule[key]}
    return body
