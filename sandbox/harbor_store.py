"""In-memory state of the Harbor sandbox: projects, robot accounts, who is calling.

Kept apart from the HTTP routes (``sandbox/harbor.py``) so the rules that clients rely on
(robot naming, ``q`` filtering, secret rotation, Basic auth as robot or admin, RBAC) read
in one place. Behaviour follows ``tests/contracts/specs/harbor-notes.md``. Lookups by name and
by id are dictionary hits, so a sandbox seeded with thousands of robots stays fast.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sandbox.harbor_rules import HarborError, random_secret

ROBOT_PREFIX = "robot$"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def access(resource: str, *actions: str) -> list[dict[str, str]]:
    return [{"resource": resource, "action": a, "effect": ""} for a in actions]


@dataclass(frozen=True)
class RobotSpec:
    """A robot to seed. ``project=None`` makes a system-level robot (``robot$<name>``)."""

    name: str
    project: str | None = None
    secret: str | None = None  # None: a random secret per start
    permissions: tuple[dict[str, Any], ...] | None = None  # None: pull/push on the project
    description: str = ""
    disable: bool = False
    duration: int = -1

    @property
    def full_name(self) -> str:
        stored = f"{self.project}+{self.name}" if self.project else self.name
        return ROBOT_PREFIX + stored


# The account the platform rotates with: robot create/read/update/list, system-wide and on
# every project (Harbor checks project robots against project-level permissions).
_ROBOT_ADMIN = access("robot", "create", "read", "update", "list")
ROTATOR_PERMISSIONS: tuple[dict[str, Any], ...] = (
    {"kind": "system", "namespace": "/", "access": _ROBOT_ADMIN},
    {"kind": "project", "namespace": "*", "access": _ROBOT_ADMIN},
)
DEFAULT_ROTATOR_SECRET = "SandboxRotator1"
DEFAULT_ROBOTS: tuple[RobotSpec, ...] = (
    RobotSpec("ci", project="idp", description="CI pushes images"),
    RobotSpec("deployer", project="idp", description="Deployments pull images"),
    RobotSpec(
        "idp-rotator",
        secret=DEFAULT_ROTATOR_SECRET,
        permissions=ROTATOR_PERMISSIONS,
        description="IDP platform: rotates robot secrets",
    ),
)


@dataclass
class Project:
    id: int
    name: str
    public: bool
    creation_time: str

    def to_json(self) -> dict[str, Any]:
        return {
            "project_id": self.id,
            "owner_id": 1,
            "name": self.name,
            "registry_id": 0,
            "creation_time": self.creation_time,
            "update_time": self.creation_time,
            "deleted": False,
            "owner_name": "admin",
            "togglable": True,
            "current_user_role_id": 1,
            "current_user_role_ids": [1],
            "repo_count": 0,
            "metadata": {"public": "true" if self.public else "false"},
            "cve_allowlist": {
                "id": self.id,
                "project_id": self.id,
                "items": [],
                "creation_time": self.creation_time,
                "update_time": self.creation_time,
            },
        }


@dataclass
class Robot:
    id: int
    stored_name: str  # Harbor stores names without the prefix: "idp+ci", "idp-rotator"
    project_id: int  # 0 for system robots
    description: str
    duration: int
    disable: bool
    permissions: list[dict[str, Any]]
    secret: str = field(repr=False)
    creator_type: str = "local"
    creator_ref: int = 1
    creation_time: str = field(default_factory=now_iso)
    update_time: str = field(default_factory=now_iso)
    refreshes: int = 0
    editable: bool = True

    @property
    def name(self) -> str:
        return ROBOT_PREFIX + self.stored_name

    @property
    def level(self) -> str:
        return "project" if self.project_id else "system"

    @property
    def expires_at(self) -> int:
        if self.duration == -1:
            return -1
        created = datetime.fromisoformat(self.creation_time.replace("Z", "+00:00"))
        return int(created.timestamp()) + self.duration * 86400

    def usable(self) -> bool:
        return not self.disable and (self.expires_at == -1 or self.expires_at > time.time())

    def to_json(self) -> dict[str, Any]:
        """The ``Robot`` definition; never carries the secret."""
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "level": self.level,
            "duration": self.duration,
            "expires_at": self.expires_at,
            "disable": self.disable,
            "editable": self.editable,
            "permissions": self.permissions,
            "creator_type": self.creator_type,
            "creator_ref": self.creator_ref,
            "creation_time": self.creation_time,
            "update_time": self.update_time,
        }


@dataclass(frozen=True)
class Principal:
    """Who a request runs as. Wrong or missing credentials give the anonymous principal."""

    name: str = ""
    admin: bool = False
    robot_id: int | None = None
    permissions: tuple[dict[str, Any], ...] = ()

    @property
    def anonymous(self) -> bool:
        return not self.name

    def can(self, resource: str, action: str, project: str | None) -> bool:
        """Harbor's RBAC for one ``resource:action``; ``project=None`` is a system check."""
        if self.admin:
            return True
        for perm in self.permissions:
            if project is None:
                if perm.get("kind") != "system":
                    continue
            elif perm.get("kind") != "project" or perm.get("namespace") not in (project, "*"):
                continue
            for item in perm.get("access") or []:
                if (
                    item.get("resource") in (resource, "*")
                    and item.get("action") in (action, "*")
                    and item.get("effect") in (None, "", "allow")
                ):
                    return True
        return False


class HarborStore:
    """Thread-safe projects and robots with O(1) lookups by id, name and project."""

    def __init__(self, admin_username: str, admin_password: str) -> None:
        self.lock = threading.RLock()
        self._admin = (admin_username, admin_password)
        self.projects: dict[int, Project] = {}
        self.project_ids: dict[str, int] = {}
        self.robots: dict[int, Robot] = {}
        self._by_key: dict[tuple[int, str], int] = {}  # (project_id, stored name) -> robot id
        self._by_project: dict[int, dict[int, None]] = {}  # insertion-ordered robot ids
        self._next_robot = 1

    # -- projects -------------------------------------------------------------------
    def add_project(self, name: str, *, public: bool = False) -> Project:
        with self.lock:
            if name in self.project_ids:
                return self.projects[self.project_ids[name]]
            project = Project(len(self.projects) + 1, name, public, now_iso())
            self.projects[project.id] = project
            self.project_ids[name] = project.id
            return project

    def find_project(self, name_or_id: str, *, is_name: bool) -> Project:
        with self.lock:
            if not is_name and name_or_id.isdigit():
                project = self.projects.get(int(name_or_id))
            else:
                pid = self.project_ids.get(name_or_id)
                project = self.projects.get(pid) if pid is not None else None
        if project is None:
            raise HarborError(404, "NOT_FOUND", f"project {name_or_id} not found")
        return project

    def project_name(self, project_id: int) -> str | None:
        project = self.projects.get(project_id)
        return project.name if project else None

    # -- robots ---------------------------------------------------------------------
    def seed(self, specs: Iterable[RobotSpec]) -> None:
        for spec in specs:
            project_id = self.add_project(spec.project).id if spec.project else 0
            permissions = spec.permissions
            if permissions is None:
                permissions = (
                    (
                        {
                            "kind": "project",
                            "namespace": spec.project,
                            "access": access("repository", "pull", "push"),
                        },
                    )
                    if spec.project
                    else ()
                )
            self.insert(
                name=spec.name,
                project_id=project_id,
                description=spec.description,
                duration=spec.duration,
                disable=spec.disable,
                permissions=[dict(p) for p in permissions],
                secret=spec.secret or random_secret(),
            )

    def insert(
        self,
        *,
        name: str,
        project_id: int,
        description: str,
        duration: int,
        disable: bool,
        permissions: list[dict[str, Any]],
        secret: str,
        creator: Principal | None = None,
    ) -> Robot:
        with self.lock:
            stored = f"{self.projects[project_id].name}+{name}" if project_id else name
            if (project_id, stored) in self._by_key:
                raise HarborError(
                    409, "CONFLICT", f"robot account {project_id}:{stored} already exists"
                )
            robot = Robot(
                id=self._next_robot,
                stored_name=stored,
                project_id=project_id,
                description=description,
                duration=duration,
                disable=disable,
                permissions=permissions,
                secret=secret,
            )
            if creator is not None and creator.robot_id is not None:
                robot.creator_type, robot.creator_ref = "robot", creator.robot_id
            self._next_robot += 1
            self.robots[robot.id] = robot
            self._by_key[(project_id, stored)] = robot.id
            self._by_project.setdefault(project_id, {})[robot.id] = None
            return robot

    def get_robot(self, robot_id: int) -> Robot:
        robot = self.robots.get(robot_id)
        if robot is None:
            raise HarborError(404, "NOT_FOUND", f"robot {robot_id} not found")
        return robot

    def by_full_name(self, full_name: str) -> Robot | None:
        if not full_name.startswith(ROBOT_PREFIX):
            return None
        stored = full_name[len(ROBOT_PREFIX) :]
        project_id = 0
        if "+" in stored:
            project_id = self.project_ids.get(stored.split("+", 1)[0], -1)
        robot_id = self._by_key.get((project_id, stored))
        return self.robots.get(robot_id) if robot_id is not None else None

    def delete(self, robot_id: int) -> None:
        with self.lock:
            robot = self.get_robot(robot_id)
            del self.robots[robot_id]
            del self._by_key[(robot.project_id, robot.stored_name)]
            del self._by_project[robot.project_id][robot_id]

    def query(self, project_id: int, filters: dict[str, str]) -> list[Robot]:
        """Robots of one project (0 = system level) matching ``q`` filters, in id order."""
        with self.lock:
            name = filters.get("name")
            if name is not None and not name.startswith("~"):
                robot_id = self._by_key.get((project_id, name))  # exact match: one dict hit
                candidates: Iterable[int] = [] if robot_id is None else [robot_id]
            else:
                candidates = list(self._by_project.get(project_id, {}))
            found = [self.robots[i] for i in candidates]
        return [r for r in found if _matches(r, filters)]

    # -- authentication -------------------------------------------------------------
    def authenticate(self, authorization: str | None) -> Principal:
        """Basic auth as the admin user or a robot; anything else runs as anonymous."""
        if not authorization or not authorization.lower().startswith("basic "):
            return Principal()
        try:
            raw = base64.b64decode(authorization[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return Principal()
        username, _, password = raw.partition(":")
        admin_user, admin_password = self._admin
        if username == admin_user:
            if hmac.compare_digest(password.encode(), admin_password.encode()):
                return Principal(name=username, admin=True)
            return Principal()
        with self.lock:
            robot = self.by_full_name(username)
            if robot is None or not robot.usable():
                return Principal()
            if not hmac.compare_digest(password.encode(), robot.secret.encode()):
                return Principal()
            return Principal(
                name=robot.name, robot_id=robot.id, permissions=tuple(robot.permissions)
            )


def _matches(robot: Robot, filters: dict[str, str]) -> bool:
    """Exact (``k=v``) or fuzzy (``k=~v``) match on filterable columns; others are ignored."""
    columns = {
        "name": robot.stored_name,
        "description": robot.description,
        "id": str(robot.id),
        "disable": str(robot.disable).lower(),
    }
    for key, value in filters.items():
        column = columns.get(key)
        if column is None:
            continue  # Harbor ignores keys that are not filterable columns
        if value.startswith("~") and value[1:] not in column:
            return False
        if not value.startswith("~") and column != value:
            return False
    return True
