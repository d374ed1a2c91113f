"""The GitHub provider: repositories, branch protection and seed files through PyGithub.

A Prefect block (configuration plus ``get_client()``) that implements ``GitProvider``.
Every operation is an idempotent ensure (or, for ``delete_repository_if_present``, its
idempotent undo), so a Prefect task retry can run it again safely.
PyGithub's own retries and throttling are switched off: Prefect is the only retry layer,
and ``translate_errors`` turns every vendor error into a ``core.errors`` class exactly once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypedDict, cast

import requests
from github import Auth, Github, GithubException, RateLimitExceededException
from github.Repository import Repository
from prefect.blocks.core import Block
from pydantic import Field, SecretStr, ValidationError, field_validator

from blocks._http import error_for_status
from blocks.models import BranchProtectionInfo, RepositoryInfo
from blocks.ports import GitProvider
from blocks.settings import PUBLIC_GITHUB_API_URL, GitHubSettings
from core.errors import (
    DomainError,
    InvalidInput,
    RateLimited,
    ResourceMismatch,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
    shorten,
)

_VENDOR_MODULES = ("github", "requests", "urllib3")
# GitHub's advice for a secondary limit that names no wait: at least a minute.
_SECONDARY_LIMIT_WAIT = 60.0
# Where a rule lists users/teams/apps, and PyGithub's edit_protection argument for each.
_ACTOR_ARGUMENTS = {
    "dismissal_restrictions": ("dismissal_users", "dismissal_teams", "dismissal_apps"),
    "bypass_pull_request_allowances": (
        "users_bypass_pull_request_allowances",
        "teams_bypass_pull_request_allowances",
        "apps_bypass_pull_request_allowances",
    ),
    "restrictions": ("user_push_restrictions", "team_push_restrictions", "app_push_restrictions"),
}
_FLAGS = (
    "required_linear_history",
    "allow_force_pushes",
    "allow_deletions",
    "block_creations",
    "required_conversation_resolution",
    "lock_branch",
    "allow_fork_syncing",
)


class _Enabled(TypedDict, total=False):
    enabled: bool


class _Reviews(TypedDict, total=False):
    required_approving_review_count: int
    dismiss_stale_reviews: bool
    require_code_owner_reviews: bool
    require_last_push_approval: bool
    dismissal_restrictions: dict[str, list[dict[str, Any]]]
    bypass_pull_request_allowances: dict[str, list[dict[str, Any]]]


class _Protection(TypedDict, total=False):
    """The parts of GitHub's ``branch-protection`` body this block reads."""

    required_status_checks: dict[str, Any]
    enforce_admins: _Enabled
    required_pull_request_reviews: _Reviews
    restrictions: dict[str, list[dict[str, Any]]]


@contextmanager
def translate_errors(action: str) -> Iterator[None]:
    """Re-raise PyGithub/requests errors of ``action`` as ``core.errors``, once.

    Domain errors raised inside pass through untouched; anything that is neither a domain
    error nor raised by PyGithub/requests/urllib3 is our bug and propagates as is.
    """
    try:
        yield
    except DomainError:
        raise
    except Exception as exc:
        error = _translate(action, exc)
        if error is None:
            raise
        try:
            raise error from None
        finally:
            # ``from None`` only hides the vendor exception; drop it, since it holds the
            # response's headers and body.
            error.__context__ = None


def _translate(action: str, exc: Exception) -> DomainError | None:
    if isinstance(exc, GithubException):
        return _from_status(action, exc)
    if isinstance(exc, requests.Timeout):  # before ConnectionError: ConnectTimeout is both
        return UpstreamTimeout(f"{action}: GitHub did not answer in time")
    if isinstance(exc, requests.ConnectionError):
        return UpstreamUnavailable(f"{action}: cannot connect to GitHub")
    if isinstance(exc, requests.RequestException) or _raised_by_vendor(exc):
        # e.g. PyGithub's AssertionError for a response URL on another host or prefix
        return UpstreamRejected(f"{action}: PyGithub failed with {type(exc).__name__}")
    return None


def _raised_by_vendor(exc: BaseException) -> bool:
    tb, module = exc.__traceback__, ""
    while tb is not None:
        module = str(tb.tb_frame.f_globals.get("__name__", ""))
        tb = tb.tb_next
    return module.split(".")[0] in _VENDOR_MODULES


def _vendor_message(data: Any) -> str:
    if not isinstance(data, dict):
        return ""
    message = str(data.get("message") or "")
    errors = data.get("errors")
    if isinstance(errors, list) and errors:
        first = errors[0]
        detail = (first.get("message") or first.get("code")) if isinstance(first, dict) else first
        message = f"{message} ({detail})" if detail else message
    return message


def _from_status(action: str, exc: GithubException) -> DomainError:
    status = exc.status
    headers = {k.lower(): v for k, v in (exc.headers or {}).items()}
    vendor = _vendor_message(exc.data)
    message = shorten(f"{action}: GitHub answered {status}" + (f": {vendor}" if vendor else ""))
    details: dict[str, Any] = {"status": status}
    if _is_rate_limit(exc, headers, vendor):  # GitHub also says so with a 403
        return RateLimited(
            message, retry_after=_retry_after(headers), details=details, upstream_status=status
        )
    return error_for_status(status or 502, message, details=details)


def _is_rate_limit(exc: GithubException, headers: dict[str, str], vendor: str) -> bool:
    if exc.status == 429 or isinstance(exc, RateLimitExceededException):
        return True
    return exc.status == 403 and (
        headers.get("x-ratelimit-remaining") == "0"
        or "retry-after" in headers
        or "rate limit" in vendor.lower()
    )


def _retry_after(headers: dict[str, str]) -> float:
    """Seconds to wait, by GitHub's rules: Retry-After, else the primary limit's reset."""
    try:
        if "retry-after" in headers:
            return max(0.0, float(headers["retry-after"]))
        if headers.get("x-ratelimit-remaining") == "0" and "x-ratelimit-reset" in headers:
            return max(0.0, float(headers["x-ratelimit-reset"]) - time.time())
    except ValueError:
        pass
    return _SECONDARY_LIMIT_WAIT


def _already_exists(exc: GithubException) -> bool:
    errors = exc.data.get("errors") if isinstance(exc.data, dict) else None
    return exc.status == 422 and any(
        "already exists" in str(e.get("message", "")) for e in errors or [] if isinstance(e, dict)
    )


def _repository_info(repo: Repository, *, created: bool) -> RepositoryInfo:
    try:
        return RepositoryInfo(
            full_name=repo.full_name,
            name=repo.name,
            html_url=repo.html_url,
            default_branch=repo.default_branch,
            private=repo.private,
            created=created,
        )
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in e["loc"]) for e in exc.errors()})[:5]
        raise UpstreamRejected(
            "GitHub answered a repository without the expected fields",
            details={"fields": fields},
        ) from None


def _names(actors: Mapping[str, Any], kind: str) -> list[str]:
    key = "login" if kind == "users" else "slug"
    return [str(a[key]) for a in actors.get(kind) or [] if isinstance(a, dict) and key in a]


def _carry_over(rule: _Protection) -> dict[str, Any]:
    """``edit_protection`` arguments that keep an existing rule (a PUT replaces all of it)."""
    kwargs: dict[str, Any] = {}
    checks = rule.get("required_status_checks")
    if checks:
        listed = checks.get("checks") or [{"context": c} for c in checks.get("contexts", [])]
        kwargs["strict"] = bool(checks.get("strict", False))
        kwargs["checks"] = [
            (c["context"], c["app_id"]) if isinstance(c.get("app_id"), int) else c["context"]
            for c in listed
        ]
    kwargs["enforce_admins"] = bool(rule.get("enforce_admins", {}).get("enabled", False))
    reviews = rule.get("required_pull_request_reviews") or _Reviews()
    for key in (
        "dismiss_stale_reviews",
        "require_code_owner_reviews",
        "require_last_push_approval",
    ):
        if key in reviews:
            kwargs[key] = bool(reviews.get(key))
    actor_lists: Mapping[str, Any] = {**reviews, "restrictions": rule.get("restrictions")}
    for source, arguments in _ACTOR_ARGUMENTS.items():
        actors = actor_lists.get(source)
        if isinstance(actors, dict):
            for kind, argument in zip(("users", "teams", "apps"), arguments, strict=True):
                kwargs[argument] = _names(actors, kind)
    flags: Mapping[str, Any] = rule
    for key in _FLAGS:
        if isinstance(flags.get(key), dict):
            kwargs[key] = bool(flags[key].get("enabled", False))
    return kwargs


class GitHubProvider(Block, GitProvider):
    """GitHub or GitHub Enterprise Server, driven through PyGithub.

    Example:
        ```python
        from blocks.github import GitHubProvider

        github = GitHubProvider.load("name")
        repo = github.ensure_repository("appenv-42")
        ```
    """

    _block_type_name = "IDP GitHub"
    _description = "GitHub repositories, branch protection and files for the IDP workflows."

    base_url: str = Field(
        default=PUBLIC_GITHUB_API_URL,
        description="API root: https://api.github.com, or https://<host>/api/v3 for GHES.",
    )
    token: SecretStr = Field(description="Token allowed to create repos and protect branches.")
    org: str = Field(description="Organization that owns the repositories.")
    timeout_seconds: float = Field(
        default=10,
        gt=0,
        description="Timeout of one HTTP request to GitHub in seconds (PyGithub rounds up).",
    )

    @classmethod
    def from_env(cls, settings: GitHubSettings | None = None) -> GitHubProvider:
        """Build from GITHUB_API_URL, GITHUB_TOKEN and GITHUB_ORG."""
        settings = settings or GitHubSettings.current()
        token = settings.GITHUB_TOKEN.get_secret_value() if settings.GITHUB_TOKEN else ""
        values = {
            "GITHUB_API_URL": settings.GITHUB_API_URL,
            "GITHUB_TOKEN": token,
            "GITHUB_ORG": settings.GITHUB_ORG or "",
        }
        for name, value in values.items():
            if not value:
                raise InvalidInput(f"{name} is not set", details={"variable": name})
        return cls(
            base_url=values["GITHUB_API_URL"],
            token=SecretStr(token),
            org=values["GITHUB_ORG"],
            timeout_seconds=settings.PROVIDER_TIMEOUT_SECONDS,
        )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("base_url must be an http(s) URL, e.g. https://api.github.com")
        return value.rstrip("/")

    def get_client(self) -> Github:
        """A PyGithub client with no retries and no throttling (Prefect retries tasks)."""
        return Github(
            base_url=self.base_url,
            auth=Auth.Token(self.token.get_secret_value()),
            # PyGithub insists on whole seconds; round up so a timeout never fires early.
            timeout=math.ceil(self.timeout_seconds),
            retry=None,
            seconds_between_requests=0,
            seconds_between_writes=0,
        )

    @contextmanager
    def _session(self, action: str) -> Iterator[Github]:
        with translate_errors(action), self.get_client() as gh:
            yield gh

    def get_repository(self, name: str) -> RepositoryInfo:
        """The repository as it is now (``created`` is always False)."""
        with self._session(f"get repository {self.org}/{name}") as gh:
            return _repository_info(gh.get_repo(f"{self.org}/{name}"), created=False)

    def ensure_repository(
        self, name: str, *, description: str = "", private: bool = True
    ) -> RepositoryInfo:
        """Create ``name`` (with an initial commit) or adopt it if its visibility matches."""
        with self._session(f"ensure repository {self.org}/{name}") as gh:
            # Lazy: creating needs the organization's URL only, not a GET of it.
            org = gh.withLazy(True).get_organization(self.org)
            options: dict[str, Any] = {"description": description} if description else {}
            try:
                repo = org.create_repo(name, private=private, auto_init=True, **options)
                return _repository_info(repo, created=True)
            except GithubException as exc:
                if not _already_exists(exc):
                    raise
            # Taken: adopt it when it is what we would have created (a retry after a lost
            # 201 lands here too).
            repo = gh.get_repo(f"{self.org}/{name}")
            if repo.private != private:
                raise ResourceMismatch(
                    f"repository {repo.full_name} exists but private={repo.private}",
                    details={"repository": repo.full_name, "private": repo.private},
                )
            return _repository_info(repo, created=False)

    def ensure_branch_protection(
        self,
        repository: str,
        *,
        branch: str | None = None,
        required_approving_review_count: int = 1,
    ) -> BranchProtectionInfo:
        """At least N approvals on ``branch`` (default branch when None).

        Reads the current rule first and writes nothing when it already asks for N or
        more. Otherwise PUTs (a full replace) carrying the rest of an existing rule over,
        so raising the review count never drops status checks or push restrictions.
        A 404 on the default branch is ``UpstreamUnavailable`` (retryable): GitHub may not
        have created it yet right after ``auto_init``. A missing named branch is
        ``NotFound``.
        """
        full_name = f"{self.org}/{repository}"
        with self._session(f"ensure branch protection on {full_name}") as gh:
            # Lazy: with ``branch`` given, the repository itself is never read (one GET
            # less); ``repo.default_branch`` fetches it when it is needed.
            repo = gh.withLazy(True).get_repo(full_name)
            name = branch or repo.default_branch
            target = None
            try:
                target = repo.get_branch(name)
            except GithubException as exc:
                if exc.status != 404 or name != repo.default_branch:
                    raise
            if target is None:
                # GitHub creates the auto_init commit asynchronously: right after the 201 the
                # default branch can 404 for a moment. Retryable, so the task tries again.
                raise UpstreamUnavailable(
                    f"branch {name} of {full_name} is not readable yet",
                    details={"repository": full_name, "branch": name, "status": 404},
                    upstream_status=404,
                )
            # An unprotected branch answers GET protection with 404; skip the round trip.
            current = _Protection()
            if target.protected:
                current = cast(_Protection, target.get_protection().raw_data)
            reviews = current.get("required_pull_request_reviews")
            have = int((reviews or _Reviews()).get("required_approving_review_count", 0))
            if reviews is not None and have >= required_approving_review_count:
                return BranchProtectionInfo(
                    repository=full_name,
                    branch=name,
                    required_approving_review_count=have,
                    changed=False,
                )
            kwargs = _carry_over(current) if current else {}
            kwargs["required_approving_review_count"] = required_approving_review_count
            target.edit_protection(**kwargs)
            return BranchProtectionInfo(
                repository=full_name,
                branch=name,
                required_approving_review_count=required_approving_review_count,
                changed=True,
            )

    def ensure_files(self, repository: str, files: Mapping[str, str], *, message: str) -> list[str]:
        """Create the missing files on the default branch; existing ones are left alone."""
        full_name = f"{self.org}/{repository}"
        created: list[str] = []
        with self._session(f"ensure files in {full_name}") as gh:
            repo = gh.get_repo(full_name)
            branch = repo.default_branch
            for path, content in files.items():
                if self._exists(repo, path, branch):
                    continue
                try:
                    repo.create_file(path, message, content, branch=branch)
                except GithubException as exc:
                    # 422 "sha wasn't supplied": someone created it since we looked.
                    if exc.status == 422 and self._exists(repo, path, branch):
                        continue
                    raise
                created.append(path)
        return created

    def delete_repository_if_present(self, name: str) -> bool:
        """Delete ``name`` (the undo of ``ensure_repository``); False when it is not there.

        Reads the repository first and deletes it only when GitHub still knows it by that
        name: a renamed or transferred one (the GET follows GitHub's 301) is
        ``ResourceMismatch`` and is left alone. The DELETE itself would answer such a
        repository with 307, which PyGithub does not raise, so it cannot tell us. A token
        that may not delete gets 403 (``Forbidden``); a 404 on either call is "already
        gone".
        """
        full_name = f"{self.org}/{name}"
        with self._session(f"delete repository {full_name}") as gh:
            try:
                repo = gh.get_repo(full_name)
                found = _repository_info(repo, created=False).full_name
                if found.lower() != full_name.lower():
                    raise ResourceMismatch(
                        f"repository {full_name} is now {found}; not deleting it",
                        details={"repository": full_name, "found": found},
                    )
                repo.delete()
            except GithubException as exc:
                if exc.status == 404:
                    return False
                raise
        return True

    @staticmethod
    def _exists(repo: Repository, path: str, branch: str) -> bool:
        try:
            found = repo.get_contents(path, ref=branch)
        except GithubException as exc:
            if exc.status == 404:
                return False
            raise
        if isinstance(found, list):
            raise ResourceMismatch(
                f"{path} is a directory in {repo.full_name}",
                details={"repository": repo.full_name, "path": path},
            )
        return True
