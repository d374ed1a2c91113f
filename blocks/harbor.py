"""Harbor robot accounts (API v2.0) for secret rotation, spoken with httpx.

Seed 002 rotates Harbor robot tokens through ``HARBOR_URL``, ``HARBOR_ROBOT_USERNAME``
and ``HARBOR_ROBOT_PASSWORD``. Harbor's rules that shape this module
(``tests/contracts/specs/harbor-notes.md``): robot names are ``robot$<project>+<name>`` or
``robot$<name>``; ``GET /robots`` lists only system robots unless ``q`` says
``Level=project,ProjectID=<id>``; ``PATCH /robots/{id}`` with ``{}`` returns the new
secret once and the old one stops working at once. Errors are translated once, in
``translate_errors()``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from prefect.blocks.core import Block
from pydantic import BaseModel, Field, PrivateAttr, SecretStr

from blocks._http import (
    ClientSlot,
    parse_json,
    parse_model,
    raise_for_response,
    required,
    shared_ssl_context,
    translate_http_errors,
)
from blocks.models import RobotAccount
from blocks.ports import RegistryProvider
from blocks.settings import HarborSettings
from core.errors import InvalidInput, NotFound, UpstreamRejected

VENDOR = "harbor"
API_PREFIX = "/api/v2.0"
ROBOT_PREFIX = "robot$"
PAGE_SIZE = 100  # Harbor's maximum
# Harbor's own rule for robot and project names; it also keeps names from adding ``q`` terms.
NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")


def _harbor_code(response: httpx.Response) -> str | None:
    """The ``code`` of Harbor's ``{"errors": [{"code", "message"}]}`` body."""
    return str(response.json()["errors"][0]["code"])


@contextmanager
def translate_errors() -> Iterator[None]:
    """The one place where httpx errors from Harbor become domain errors."""
    with translate_http_errors(VENDOR):
        yield


class _Robot(BaseModel):
    """The part of Harbor's ``Robot`` definition the platform reads."""

    id: int
    name: str
    level: str = ""
    disable: bool = False


class _Project(BaseModel):
    project_id: int
    name: str


class _RobotSec(BaseModel):
    secret: str = ""


class HarborProvider(Block, RegistryProvider):
    """Finds Harbor robot accounts and refreshes their secrets.

    Example:
        ```python
        from blocks.harbor import HarborProvider

        harbor = HarborProvider.load("harbor")
        robot = harbor.find_robot("ci", project="idp")
        new_secret = harbor.refresh_robot_secret(robot.id)  # a SecretStr
        ```
    """

    _block_type_name = "IDP Harbor"
    _description = "Harbor robot accounts: lookup and secret rotation (API v2.0)."

    url: str = Field(..., description="Harbor base URL, without /api/v2.0 (HARBOR_URL)")
    username: str = Field(
        ...,
        description="Harbor user, or a robot's full name such as robot$idp-rotator "
        "(HARBOR_ROBOT_USERNAME); needs robot read/list/update",
    )
    password: SecretStr = Field(..., description="Password or robot secret (HARBOR_ROBOT_PASSWORD)")
    timeout_seconds: float = Field(10.0, gt=0, description="Timeout of one HTTP call, seconds")

    _slot: ClientSlot = PrivateAttr(default_factory=ClientSlot)

    @classmethod
    def from_env(cls, settings: HarborSettings | None = None) -> HarborProvider:
        """Build from HARBOR_URL, HARBOR_ROBOT_USERNAME and HARBOR_ROBOT_PASSWORD."""
        settings = settings or HarborSettings.current()
        return cls(
            url=required(settings.HARBOR_URL, "HARBOR_URL"),
            username=required(settings.HARBOR_ROBOT_USERNAME, "HARBOR_ROBOT_USERNAME"),
            password=required(settings.HARBOR_ROBOT_PASSWORD, "HARBOR_ROBOT_PASSWORD"),
            timeout_seconds=settings.PROVIDER_TIMEOUT_SECONDS,
        )

    def get_client(self) -> httpx.Client:
        """This block's shared client on ``<url>/api/v2.0`` with Basic auth (built once)."""
        return self._slot.get(self._build_client, lambda c: c.is_closed)

    def close(self) -> None:
        self._slot.close(lambda c: c.close())

    def _build_client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url.rstrip("/") + API_PREFIX,
            auth=httpx.BasicAuth(self.username, self.password.get_secret_value()),
            timeout=self.timeout_seconds,
            headers={"Accept": "application/json"},
            verify=shared_ssl_context(),
        )

    # -- RegistryProvider -------------------------------------------------------------
    def find_robot(self, name: str, *, project: str | None = None) -> RobotAccount:
        """Find ``robot$<name>`` (system) or ``robot$<project>+<name>`` (project level)."""
        _check_name(name, "robot name")
        with translate_errors():
            scope = ""
            stored = name
            if project is not None:
                _check_name(project, "project name")
                scope = f"Level=project,ProjectID={self._project_id(project)}"
                stored = f"{project}+{name}"
            full_name = ROBOT_PREFIX + stored
            # An exact name filter finds it in one call; listing the whole level and
            # comparing full names is the fallback for Harbors that filter differently.
            exact = ",".join(p for p in (scope, f"name={stored}") if p)
            for q in (exact, scope):
                for robot in self._list_robots(q):
                    if robot.name == full_name:
                        return RobotAccount(
                            id=robot.id,
                            name=robot.name,
                            level=robot.level or ("project" if project else "system"),
                            project=project,
                            disabled=robot.disable,
                        )
        raise NotFound(
            f"{VENDOR}: robot {full_name} not found",
            details={"vendor": VENDOR, "robot": full_name},
        )

    def refresh_robot_secret(self, robot_id: int) -> SecretStr:
        """Have Harbor generate a new secret (``PATCH`` with ``{}``); the old one dies now."""
        with translate_errors():
            response = self.get_client().patch(f"/robots/{int(robot_id)}", json={})
            raise_for_response(response, VENDOR, _harbor_code)
            sec = parse_model(_RobotSec, parse_json(response, VENDOR), VENDOR, "RobotSec")
        if not sec.secret:
            raise UpstreamRejected(
                f"{VENDOR}: refresh of robot {robot_id} returned no secret",
                details={"vendor": VENDOR, "robot_id": robot_id},
            )
        return SecretStr(sec.secret)

    def health(self) -> dict[str, Any]:
        """Harbor's ``GET /health`` (always 200; read ``status``)."""
        with translate_errors():
            response = self.get_client().get("/health")
            raise_for_response(response, VENDOR, _harbor_code)
            data = parse_json(response, VENDOR)
        if not isinstance(data, dict):
            raise UpstreamRejected(f"{VENDOR}: unexpected health body", details={"vendor": VENDOR})
        return data

    # -- helpers ----------------------------------------------------------------------
    def _project_id(self, project: str) -> int:
        response = self.get_client().get(
            f"/projects/{project}", headers={"X-Is-Resource-Name": "true"}
        )
        raise_for_response(response, VENDOR, _harbor_code)
        return parse_model(_Project, parse_json(response, VENDOR), VENDOR, "Project").project_id

    def _list_robots(self, q: str) -> Iterator[_Robot]:
        """Every robot matching ``q``, page by page, until ``X-Total-Count`` is reached."""
        page, seen = 1, 0
        while True:
            params: dict[str, Any] = {"page": page, "page_size": PAGE_SIZE}
            if q:
                params["q"] = q
            response = self.get_client().get("/robots", params=params)
            raise_for_response(response, VENDOR, _harbor_code)
            items = parse_json(response, VENDOR)
            if not isinstance(items, list):
                raise UpstreamRejected(f"{VENDOR}: robot list is not a list")
            for item in items:
                yield parse_model(_Robot, item, VENDOR, "Robot")
            seen += len(items)
            total = _int(response.headers.get("x-total-count"))
            # X-Total-Count is the authority; without it a short page is the last one.
            done = seen >= total if total is not None else len(items) < PAGE_SIZE
            if not items or done:
                return
            page += 1


def _check_name(value: str, what: str) -> None:
    if not NAME.match(value):
        raise InvalidInput(f"{VENDOR}: invalid {what}", details={"vendor": VENDOR, "field": what})


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
