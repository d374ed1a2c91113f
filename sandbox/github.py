"""A local server that speaks GitHub's REST API well enough for unmodified PyGithub.

It serves the operations the platform uses (organizations, the token's user, repository
create/get/delete, branches and branch refs, branch protection, file contents) under a prefix —
``/api/v3`` by default, the GitHub Enterprise Server layout; ``""`` gives the
api.github.com layout — with GitHub's status codes, error bodies and headers. Responses
follow the contract schemas in ``tests/contracts/specs``; the tests check them against both
spec files.

    with GitHubSandbox() as gh:
        Github(base_url=gh.api_url, auth=Auth.Token(gh.token)).get_organization("acme")

Fault injection (scripted statuses, 429 with Retry-After, latency, refused connections)
comes from ``SandboxServer``; the primary rate limit and request recording from
``github_edge``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sandbox.github_bodies import Links, full_repository, node_id, organization_full, private_user
from sandbox.github_edge import Exchange, GitHubEdge, RateLimit
from sandbox.github_git import (
    branch_with_protection,
    content_entry,
    directory_listing,
    git_commit_body,
)
from sandbox.github_protection import normalize_protection, protection_body
from sandbox.github_state import (
    DOC_CONTENTS,
    DOC_CREATE_ORG_REPO,
    DOC_CREATE_USER_REPO,
    DOCS,
    ApiError,
    GitHubStore,
    Repo,
)
from sandbox.server import SandboxServer

# GitHub's usual messages for the statuses tests inject; 429 and 403 are chosen so that
# PyGithub classifies them as GitHub would (secondary limit vs. plain permission error).
_FAULT_MESSAGES = {
    401: "Bad credentials",
    403: "Resource not accessible by integration",
    404: "Not Found",
    409: "Conflict",
    422: "Validation Failed",
    429: "You have exceeded a secondary rate limit. "
    "Please wait a few minutes before you try again.",
}


def error_body(status: int) -> dict[str, Any]:
    """GitHub's ``basic-error`` body for an injected fault."""
    try:
        default = HTTPStatus(status).phrase
    except ValueError:
        default = "Error"
    return {
        "message": _FAULT_MESSAGES.get(status, default),
        "documentation_url": DOCS,
        "status": str(status),
    }


class GitHubJSON(JSONResponse):
    media_type = "application/json; charset=utf-8"


Handler = Callable[[Request], Awaitable[Response]]


def _api(handler: Handler) -> Handler:
    """Turn ``ApiError`` into GitHub's error body with its status."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except ApiError as exc:
            return GitHubJSON(exc.body(), status_code=exc.status)

    return endpoint


async def _json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        raise ApiError(400, "Problems parsing JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "Body should be a JSON object")
    return body


class GitHubSandbox:
    """GitHub (Enterprise) REST API on 127.0.0.1; in-memory, thread-safe state."""

    def __init__(
        self,
        *,
        token: str = "sandbox-github-token",
        org: str = "acme",
        port: int = 0,
        prefix: str = "/api/v3",
        user: str = "idp-bot",
    ) -> None:
        self.token = token
        self.org = org
        self.prefix = f"/{prefix.strip('/')}" if prefix.strip("/") else ""
        self.store = GitHubStore(org=org, user=user)
        self.rate_limit = RateLimit()
        self.server = SandboxServer("github", self._routes(), self.state, error_body, port=port)
        # Outermost layer: auth, rate limit and headers apply to injected faults as well.
        # SandboxServer serves whatever ``app`` holds when it starts listening.
        self.edge = GitHubEdge(self.server.app, token=token, rate_limit=self.rate_limit)
        self.server.app = self.edge

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def api_url(self) -> str:
        return self.url + self.prefix

    def start(self) -> GitHubSandbox:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> GitHubSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def state(self) -> dict[str, Any]:
        """Orgs, repos, branches, protections and files (also at ``GET /_sandbox/state``)."""
        return self.store.snapshot()

    def recording(self) -> AbstractContextManager[list[Exchange]]:
        """``with sandbox.recording() as exchanges:`` — every API request and its answer."""
        return self.edge.recording()

    def _links(self) -> Links:
        return Links(web=self.url, api=self.api_url)

    # -- handlers -------------------------------------------------------------------------

    async def get_org(self, request: Request) -> Response:
        org = self.store.account(request.path_params["org"], kind="Organization")
        with self.store.lock:
            repos = [r for r in self.store.repos.values() if r.owner is org]
        private = sum(r.private for r in repos)
        body = organization_full(self._links(), org, private=private, public=len(repos) - private)
        return GitHubJSON(body)

    async def get_user(self, request: Request) -> Response:
        user = self.store.user
        with self.store.lock:
            owned = sum(1 for r in self.store.repos.values() if r.owner is user)
        return GitHubJSON(private_user(self._links(), user, repos=owned))

    async def create_org_repo(self, request: Request) -> Response:
        org = self.store.account(request.path_params["org"], kind="Organization")
        repo = self.store.create_repo(org, await _json_object(request), doc=DOC_CREATE_ORG_REPO)
        return self._created(repo)

    async def create_user_repo(self, request: Request) -> Response:
        body = await _json_object(request)
        repo = self.store.create_repo(self.store.user, body, doc=DOC_CREATE_USER_REPO)
        return self._created(repo)

    def _created(self, repo: Repo) -> Response:
        body = full_repository(self._links(), repo)
        return GitHubJSON(body, status_code=201, headers={"Location": body["url"]})

    def _repo(self, request: Request) -> Repo:
        return self.store.repo(request.path_params["owner"], request.path_params["repo"])

    async def get_repo(self, request: Request) -> Response:
        return GitHubJSON(full_repository(self._links(), self._repo(request)))

    async def delete_repo(self, request: Request) -> Response:
        self.store.delete_repo(request.path_params["owner"], request.path_params["repo"])
        return Response(status_code=204)

    async def get_branch(self, request: Request) -> Response:
        repo = self._repo(request)
        branch = self.store.branch(repo, request.path_params["branch"])
        return GitHubJSON(branch_with_protection(self._links(), repo, branch, self.store.user))

    async def create_ref(self, request: Request) -> Response:
        repo = self._repo(request)
        branch, ref = self.store.create_ref(repo, await _json_object(request))
        url = f"{self._links().repo(repo)}/git/refs/heads/{quote(branch.name, safe='/')}"
        body = {
            "ref": ref,
            "node_id": node_id("Ref", repo.id),
            "url": url,
            "object": {
                "type": "commit",
                "sha": branch.head,
                "url": f"{self._links().repo(repo)}/git/commits/{branch.head}",
            },
        }
        return GitHubJSON(body, status_code=201, headers={"Location": url})

    async def get_protection(self, request: Request) -> Response:
        repo, name = self._repo(request), request.path_params["branch"]
        rule = self.store.protection(repo, name)
        return GitHubJSON(
            protection_body(self._links(), repo, self.store.branch(repo, name).name, rule)
        )

    async def put_protection(self, request: Request) -> Response:
        repo, name = self._repo(request), request.path_params["branch"]
        self.store.branch(repo, name)  # 404 for a missing branch before validating the body
        rule = self.store.protect(repo, name, normalize_protection(await _json_object(request)))
        return GitHubJSON(protection_body(self._links(), repo, name, rule))

    async def get_contents(self, request: Request) -> Response:
        repo, path = self._repo(request), request.path_params["path"].strip("/")
        ref = request.query_params.get("ref") or repo.default_branch
        found = self.store.read_path(repo, path, ref)
        if isinstance(found, list):
            return GitHubJSON(directory_listing(self._links(), repo, ref, path, found))
        return GitHubJSON(content_entry(self._links(), repo, ref, path, found, with_content=True))

    async def put_contents(self, request: Request) -> Response:
        repo, path = self._repo(request), request.path_params["path"].strip("/")
        body = await _json_object(request)
        for key in ("message", "content"):
            if not isinstance(body.get(key), str):
                raise ApiError(
                    422,
                    f'Invalid request.\n\n"{key}" wasn\'t supplied.',
                    documentation_url=DOC_CONTENTS,
                )
        try:
            content = base64.b64decode(body["content"], validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(
                422, "content is not valid Base64", documentation_url=DOC_CONTENTS
            ) from None
        created, entry, commit = self.store.write_file(repo, path, body, content)
        links = self._links()
        ref = body.get("branch") or repo.default_branch
        answer = {
            "content": content_entry(links, repo, ref, path, entry, with_content=False),
            "commit": git_commit_body(links, repo, commit),
        }
        return GitHubJSON(answer, status_code=201 if created else 200)

    async def unknown(self, request: Request) -> Response:
        return GitHubJSON(
            {"message": "Not Found", "documentation_url": DOCS, "status": "404"}, status_code=404
        )

    def _routes(self) -> list[BaseRoute]:
        p = self.prefix
        repo = f"{p}/repos/{{owner}}/{{repo}}"
        table: list[tuple[str, Handler, list[str]]] = [
            (f"{p}/orgs/{{org}}", self.get_org, ["GET"]),
            (f"{p}/orgs/{{org}}/repos", self.create_org_repo, ["POST"]),
            (f"{p}/user", self.get_user, ["GET"]),
            (f"{p}/user/repos", self.create_user_repo, ["POST"]),
            (repo, self.get_repo, ["GET"]),
            (repo, self.delete_repo, ["DELETE"]),
            # Protection first: branch names may contain "/" (x-multi-segment).
            (f"{repo}/branches/{{branch:path}}/protection", self.get_protection, ["GET"]),
            (f"{repo}/branches/{{branch:path}}/protection", self.put_protection, ["PUT"]),
            (f"{repo}/branches/{{branch:path}}", self.get_branch, ["GET"]),
            (f"{repo}/git/refs", self.create_ref, ["POST"]),
            (f"{repo}/contents/{{path:path}}", self.get_contents, ["GET"]),
            (f"{repo}/contents/{{path:path}}", self.put_contents, ["PUT"]),
            (f"{p}/{{rest:path}}", self.unknown, ["GET", "POST", "PUT", "PATCH", "DELETE"]),
        ]
        return [Route(path, _api(handler), methods=methods) for path, handler, methods in table]
