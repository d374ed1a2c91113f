"""A local Harbor (API v2.0) that speaks the robot-account API the platform rotates with.

The Harbor block, the tests and the demo talk to it exactly as they would to a real
Harbor: Basic auth as ``admin`` or as a robot (full name + secret), ``q`` queries on
``GET /robots`` (system robots only unless ``Level=project,ProjectID=N``), secret refresh
with ``PATCH`` (the old secret stops working at once), Harbor's error bodies, and 5xx
bodies sanitised to ``UNKNOWN``. Semantics: ``tests/contracts/specs/harbor-notes.md``; state
and auth live in ``sandbox/harbor_store.py``, input rules and the error format in
``sandbox/harbor_rules.py``.

Seed by default: project ``idp`` (id 1) with robots ``robot$idp+ci`` and
``robot$idp+deployer``, and the system robot ``robot$idp-rotator`` (secret
``SandboxRotator1``, deterministic so local setups survive restarts) holding robot
create/read/update/list; admin ``admin`` / ``Harbor12345`` (Harbor's well-known default).
``robots=(*DEFAULT_ROBOTS, *more)`` seeds extra robots (thousands are fine).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Match, Route

from sandbox.harbor_rules import (
    SECRET_RULE,
    STATUS_CODES,
    HarborError,
    Result,
    error_body,
    error_response,
    int_param,
    is_valid_secret,
    json_endpoint,
    parse_q,
    random_secret,
    read_body,
    request_id,
    robot_id_param,
    validate_permissions,
    validate_robot_body,
)
from sandbox.harbor_store import (
    DEFAULT_ROBOTS,
    DEFAULT_ROTATOR_SECRET,
    HarborStore,
    Principal,
    RobotSpec,
    now_iso,
)
from sandbox.server import SandboxServer

API = "/api/v2.0"
ROTATOR_USERNAME = "robot$idp-rotator"

__all__ = ["DEFAULT_ROBOTS", "DEFAULT_ROTATOR_SECRET", "HarborSandbox", "RobotSpec"]


class HarborSandbox:
    """Harbor robot API on loopback. ``.url`` is the Harbor URL (without ``/api/v2.0``)."""

    def __init__(
        self,
        admin_username: str = "admin",
        admin_password: str = "Harbor12345",
        projects: Sequence[str] = ("idp",),
        robots: Sequence[RobotSpec] = DEFAULT_ROBOTS,
        port: int = 0,
    ) -> None:
        self.store = HarborStore(admin_username, admin_password)
        for name in projects:
            self.store.add_project(name)
        self.store.seed(robots)
        self._health: dict[str, str] = dict.fromkeys(
            ("core", "database", "jobservice", "portal", "redis", "registry", "registryctl"), ""
        )
        self.server = SandboxServer("harbor", self._routes(), self.state, error_body, port=port)

    # -- lifecycle ------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self.server.url

    @property
    def api_url(self) -> str:
        return self.server.url + API

    def start(self) -> HarborSandbox:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> HarborSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- helpers for tests and the runner (Python only; secrets never go over /_sandbox) --
    def robot_secret(self, full_name: str) -> str:
        """The current secret of a robot (a test double may know what Harbor only hashes)."""
        with self.store.lock:
            robot = self.store.by_full_name(full_name)
            if robot is None:
                raise KeyError(full_name)
            return robot.secret

    def robot_id(self, full_name: str) -> int:
        with self.store.lock:
            robot = self.store.by_full_name(full_name)
            if robot is None:
                raise KeyError(full_name)
            return robot.id

    def add_robots(self, specs: Sequence[RobotSpec]) -> None:
        self.store.seed(specs)

    def set_component_health(self, component: str, healthy: bool, error: str = "down") -> None:
        """Mark a component unhealthy: ``GET /health`` still answers 200, with the status."""
        self._health[component] = "" if healthy else error

    def state(self) -> dict[str, Any]:
        with self.store.lock:
            return {
                "projects": [{"id": p.id, "name": p.name} for p in self.store.projects.values()],
                "robots": [
                    {
                        "id": r.id,
                        "name": r.name,
                        "level": r.level,
                        "project_id": r.project_id,
                        "disable": r.disable,
                        "refreshes": r.refreshes,
                    }
                    for r in self.store.robots.values()
                ],
                "unhealthy": sorted(k for k, v in self._health.items() if v),
            }

    # -- routes ---------------------------------------------------------------------
    def _routes(self) -> list[BaseRoute]:
        routes: list[BaseRoute] = [
            Route(f"{API}/ping", self._ping, methods=["GET"]),
            Route(f"{API}/health", json_endpoint(self._health_check), methods=["GET"]),
            Route(f"{API}/projects/{{project}}", json_endpoint(self._get_project), methods=["GET"]),
            Route(f"{API}/robots", json_endpoint(self._list_robots), methods=["GET"]),
            Route(f"{API}/robots", json_endpoint(self._create_robot), methods=["POST"]),
            Route(f"{API}/robots/{{robot_id}}", json_endpoint(self._get_robot), methods=["GET"]),
            Route(f"{API}/robots/{{robot_id}}", json_endpoint(self._update_robot), methods=["PUT"]),
            Route(f"{API}/robots/{{robot_id}}", json_endpoint(self._refresh), methods=["PATCH"]),
            Route(
                f"{API}/robots/{{robot_id}}", json_endpoint(self._delete_robot), methods=["DELETE"]
            ),
        ]

        async def unmatched(request: Request) -> Response:
            known = any(r.matches(request.scope)[0] != Match.NONE for r in routes)
            status = 405 if known else 404
            return error_response(
                request, HarborError(status, STATUS_CODES[status], "not supported")
            )

        methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
        return [*routes, Route(f"{API}/{{rest:path}}", unmatched, methods=methods)]

    async def _ping(self, request: Request) -> Response:
        return PlainTextResponse("Pong", headers=request_id(request))

    async def _health_check(self, request: Request) -> Result:
        components = [
            {"name": k, "status": "unhealthy", "error": v}
            if v
            else {"name": k, "status": "healthy"}
            for k, v in self._health.items()
        ]
        healthy = all(c["status"] == "healthy" for c in components)
        return 200, {"status": "healthy" if healthy else "unhealthy", "components": components}

    async def _get_project(self, request: Request) -> Result:
        is_name = request.headers.get("x-is-resource-name", "false").lower() == "true"
        project = self.store.find_project(request.path_params["project"], is_name=is_name)
        caller = self._caller(request)
        if not project.public:
            _require(caller, "project", "read", project.name, any_resource=True)
        return 200, project.to_json()

    async def _list_robots(self, request: Request) -> Result:
        params = request.query_params
        filters = parse_q(params.get("q"))
        page = int_param(params.get("page"), 1, "page")
        page_size = int_param(params.get("page_size"), 10, "page_size")
        if page_size > 100:
            raise HarborError(
                422,
                "UNPROCESSABLE_ENTITY",
                "page_size in query should be less than or equal to 100",
            )
        page, page_size = max(page, 1), page_size if page_size > 0 else 10
        level = filters.pop("Level", None)
        project_id = 0
        if level is not None and level not in ("project", "system"):
            raise HarborError(400, "BAD_REQUEST", "bad request error level input")
        if level == "project":
            if "ProjectID" not in filters:
                raise HarborError(
                    400, "BAD_REQUEST", "must with project ID when to query project robots"
                )
            if not filters["ProjectID"].isdigit():
                raise HarborError(400, "BAD_REQUEST", "Project ID must be int type.")
            project_id = int(filters["ProjectID"])
        filters.pop("ProjectID", None)
        caller = self._caller(request)
        _require(
            caller, "robot", "list", self.store.project_name(project_id) if project_id else None
        )
        found = self.store.query(project_id, filters)
        total = len(found)
        items = [r.to_json() for r in found[(page - 1) * page_size : page * page_size]]
        headers = {"X-Total-Count": str(total)}
        links = []
        keep = {k: v for k, v in params.items() if k in ("q", "sort")}
        for rel, target in (("prev", page - 1), ("next", page + 1)):
            if (rel == "prev" and page > 1) or (rel == "next" and page * page_size < total):
                query = urlencode({**keep, "page": target, "page_size": page_size})
                links.append(f'<{API}/robots?{query}>; rel="{rel}"')
        if links:
            headers["Link"] = " , ".join(links)
        return 200, items, headers

    async def _create_robot(self, request: Request) -> Result:
        body = await read_body(request)
        body.setdefault("duration", -1)
        validate_robot_body(body, creating=True)
        chosen = body.get("secret") or ""
        if chosen and not is_valid_secret(chosen):
            raise HarborError(400, "BAD_REQUEST", SECRET_RULE)
        project_id, project_name = 0, None
        if body["level"] == "project":
            project_name = body["permissions"][0].get("namespace") or ""
            project_id = self.store.find_project(project_name, is_name=True).id
        caller = self._caller(request)
        _require(caller, "robot", "create", project_name)
        robot = self.store.insert(
            name=body["name"],
            project_id=project_id,
            description=body.get("description") or "",
            duration=body["duration"],
            disable=bool(body.get("disable")),
            permissions=body["permissions"],
            secret=chosen or random_secret(),
            creator=caller,
        )
        created = {
            "id": robot.id,
            "name": robot.name,
            "secret": robot.secret,
            "creation_time": robot.creation_time,
            "expires_at": robot.expires_at,
        }
        return 201, created, {"Location": f"{API}/robots/{robot.id}"}

    async def _get_robot(self, request: Request) -> Result:
        robot = self.store.get_robot(robot_id_param(request))
        _require(self._caller(request), "robot", "read", self._robot_project(robot.project_id))
        return 200, robot.to_json()

    async def _update_robot(self, request: Request) -> Result:
        robot = self.store.get_robot(robot_id_param(request))
        body = await read_body(request)
        body.setdefault("duration", robot.duration)
        validate_robot_body(body, creating=False)
        if body.get("level") != robot.level or body.get("name") not in (robot.name, None):
            raise HarborError(400, "BAD_REQUEST", "cannot update the level or name of robot")
        project = self._robot_project(robot.project_id)
        _require(self._caller(request), "robot", "update", project)
        if not robot.editable:
            raise HarborError(403, "DENIED", "editing of legacy robot is not allowed")
        permissions = body["permissions"]
        validate_permissions(permissions, robot.level)
        if project is not None and permissions[0].get("namespace") != project:
            raise HarborError(400, "BAD_REQUEST", "cannot update the project id of robot")
        with self.store.lock:
            robot.description = body.get("description") or ""
            robot.duration, robot.disable = body["duration"], bool(body.get("disable"))
            robot.permissions, robot.update_time = permissions, now_iso()
        return 200, None

    async def _refresh(self, request: Request) -> Result:
        robot = self.store.get_robot(robot_id_param(request))
        _require(self._caller(request), "robot", "update", self._robot_project(robot.project_id))
        body = await read_body(request)
        chosen = body.get("secret") or ""
        if not isinstance(chosen, str) or (chosen and not is_valid_secret(chosen)):
            raise HarborError(400, "BAD_REQUEST", SECRET_RULE)
        with self.store.lock:
            # Replacing the stored secret is what makes the old one fail at once.
            robot.secret = chosen or random_secret()
            robot.refreshes += 1
            robot.update_time = now_iso()
            return 200, ({} if chosen else {"secret": robot.secret})

    async def _delete_robot(self, request: Request) -> Result:
        robot = self.store.get_robot(robot_id_param(request))
        _require(self._caller(request), "robot", "delete", self._robot_project(robot.project_id))
        self.store.delete(robot.id)
        return 200, None

    def _caller(self, request: Request) -> Principal:
        return self.store.authenticate(request.headers.get("authorization"))

    def _robot_project(self, project_id: int) -> str | None:
        return (self.store.project_name(project_id) or "") if project_id else None


def _require(
    caller: Principal, resource: str, action: str, project: str | None, any_resource: bool = False
) -> None:
    """401 for anonymous callers, 403 for callers without ``resource:action`` (Harbor order)."""
    if caller.anonymous:
        raise HarborError(401, "UNAUTHORIZED", "unauthorized")
    allowed = caller.can(resource, action, project)
    if not allowed and any_resource:  # reading a project: any permission on it will do
        allowed = any(
            p.get("kind") == "project" and p.get("namespace") in (project, "*")
            for p in caller.permissions
        )
    if not allowed:
        raise HarborError(403, "FORBIDDEN", caller.name if project is None else "forbidden")
