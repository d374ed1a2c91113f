"""The Harbor sandbox and the Harbor block against Harbor's own Swagger 2.0 subset.

Every response the sandbox gives for a contracted operation must validate against the
swagger definitions (also in a strict mode that rejects fields the spec does not name),
and every request the block sends must be a contracted operation with declared
parameters and a valid body. Statuses outside the swagger are allowed only where
tests/contracts/specs/harbor-notes.md documents them (409 on create, go-swagger's 422,
project 403/404).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import parse_qsl

import httpx
import jsonschema
import pytest
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from blocks.harbor import HarborProvider
from core.errors import DomainError
from sandbox.harbor import HarborSandbox
from tests.contracts.openapi_check import contracts_dir

ADMIN = ("admin", "Harbor12345")
ROTATOR = ("robot$idp-rotator", "SandboxRotator1")
PULL = [{"resource": "repository", "action": "pull", "effect": ""}]
# Statuses the notes document beyond the swagger: 409 on create (§5), go-swagger's 422
# (§4, §6), 401/403 from the handler's access check on list (§1), project 403/404 (§2).
EXTRA_STATUSES = {
    ("post", "/robots"): {409, 422},
    ("patch", "/robots/{robot_id}"): {422},
    ("put", "/robots/{robot_id}"): {422},
    ("get", "/robots/{robot_id}"): {422},
    ("get", "/robots"): {401, 403, 422},
    ("get", "/projects/{project_name_or_id}"): {403, 404},
}


@cache
def spec() -> dict[str, Any]:
    return yaml.safe_load((contracts_dir() / "harbor-robots-swagger-subset.yaml").read_text())


def _strict(document: dict[str, Any]) -> dict[str, Any]:
    """A copy whose object definitions reject properties the spec does not name."""
    strict = copy.deepcopy(document)
    for definition in strict["definitions"].values():
        if definition.get("type") == "object" and "properties" in definition:
            definition["additionalProperties"] = False
    return strict


@cache
def registry(strict: bool) -> Registry:
    document = _strict(spec()) if strict else spec()
    return Registry().with_resource("urn:harbor", Resource(document, DRAFT4))


def validate(schema: dict[str, Any], instance: Any) -> None:
    """Validate against a swagger schema (``$ref`` into the document), lax and strict."""
    rooted = json.loads(json.dumps(schema).replace('"#/', '"urn:harbor#/'))
    for strict in (False, True):
        jsonschema.Draft4Validator(rooted, registry=registry(strict)).validate(instance)


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    pattern: re.Pattern[str]
    spec: dict[str, Any]

    def parameters(self) -> list[dict[str, Any]]:
        resolved = []
        for param in self.spec.get("parameters", []):
            if "$ref" in param:
                param = spec()["parameters"][param["$ref"].rsplit("/", 1)[1]]
            resolved.append(param)
        return resolved

    def response(self, status: int) -> dict[str, Any] | None:
        found = self.spec["responses"].get(str(status))
        if found and "$ref" in found:
            found = spec()["responses"][found["$ref"].rsplit("/", 1)[1]]
        return found


def operations() -> list[Operation]:
    found = []
    for template, item in spec()["paths"].items():
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
        for method, op in item.items():
            found.append(Operation(method, template, re.compile(f"^{regex}$"), op))
    return found


def find(method: str, path: str) -> Operation:
    base = spec()["basePath"]
    assert path.startswith(base), path
    for op in operations():
        if op.method == method.lower() and op.pattern.match(path[len(base) :]):
            return op
    raise AssertionError(f"{method} {path} is not a contracted operation")


def check_response(response: httpx.Response) -> Operation:
    op = find(response.request.method, response.request.url.path)
    status = response.status_code
    documented = op.response(status)
    allowed = EXTRA_STATUSES.get((op.method, op.template), set())
    assert documented is not None or status in allowed, f"{op.template}: undocumented {status}"
    if status >= 400:
        validate({"$ref": "#/definitions/Errors"}, response.json())
        return op
    assert documented is not None
    if "schema" in documented:
        if op.template == "/ping":
            validate(documented["schema"], response.text)
        else:
            validate(documented["schema"], response.json())
    else:
        assert response.content == b"", f"{op.template} {status} must have an empty body"
    for name, header in documented.get("headers", {}).items():
        if name.lower() in ("x-total-count",):
            assert response.headers[name].isdigit()
        if header.get("type") == "string" and name != "X-Request-Id":
            assert isinstance(response.headers.get(name, ""), str)
    if op.template == "/robots" and op.method == "get":
        assert response.headers["x-total-count"].isdigit()
    if op.method == "post" and status == 201:
        assert response.headers["location"].startswith("/api/v2.0/robots/")
    return op


def check_request(request: httpx.Request) -> Operation:
    op = find(request.method, request.url.path)
    params = op.parameters()
    declared_query = {p["name"]: p for p in params if p["in"] == "query"}
    for name, value in parse_qsl(request.url.query.decode()):
        assert name in declared_query, f"{op.template}: undeclared query parameter {name}"
        param = declared_query[name]
        if param["type"] == "integer":
            assert int(value) <= param.get("maximum", int(value))
    for param in params:
        if (
            param["in"] == "header"
            and param["name"] in request.headers
            and param["type"] == "boolean"
        ):
            assert request.headers[param["name"]] in ("true", "false")
        if param["in"] == "body":
            assert request.content, f"{op.template} requires a body"
            validate(param["schema"], json.loads(request.content))
        if param["in"] == "path" and param["type"] == "integer":
            match = op.pattern.match(request.url.path[len(spec()["basePath"]) :])
            assert match is not None and match[param["name"]].isdigit()
    assert request.headers["authorization"].startswith("Basic ")
    return op


@pytest.fixture(scope="module")
def harbor() -> Iterator[HarborSandbox]:
    with HarborSandbox() as sandbox:
        yield sandbox


def test_every_sandbox_response_validates(harbor: HarborSandbox) -> None:
    seen: list[httpx.Response] = []

    def record(response: httpx.Response) -> None:
        response.read()
        seen.append(response)

    hooks = {"response": [record]}
    with httpx.Client(base_url=harbor.api_url, auth=ADMIN, event_hooks=hooks) as admin:
        admin.get("/ping")
        admin.get("/health")
        admin.get("/projects/idp", headers={"X-Is-Resource-Name": "true"})
        admin.get("/projects/1")
        admin.get("/projects/ghost")
        admin.get("/robots")
        admin.get("/robots", params={"q": "Level=project,ProjectID=1", "page_size": 1})
        admin.get("/robots", params={"q": "Level=project"})
        created = admin.post(
            "/robots",
            json={
                "name": "contract",
                "description": "contract test",
                "level": "project",
                "duration": 30,
                "disable": False,
                "permissions": [{"kind": "project", "namespace": "idp", "access": PULL}],
            },
        )
        robot_id = created.json()["id"]
        admin.post("/robots", json={"name": "contract", "level": "project", "permissions": []})
        admin.post(
            "/robots",
            json={
                "name": "contract",
                "level": "project",
                "duration": -1,
                "permissions": [{"kind": "project", "namespace": "idp", "access": PULL}],
            },
        )
        robot = admin.get(f"/robots/{robot_id}").json()
        admin.get("/robots/424242")
        admin.put(f"/robots/{robot_id}", json={**robot, "description": "changed"})
        admin.put(f"/robots/{robot_id}", json={**robot, "level": "system"})
        admin.patch(f"/robots/{robot_id}", json={})
        admin.patch(f"/robots/{robot_id}", json={"secret": "Chosen-Secret-9"})
        admin.patch(f"/robots/{robot_id}", json={"secret": "weak"})
        admin.patch("/robots/424242", json={})
        admin.delete(f"/robots/{robot_id}")
        admin.delete(f"/robots/{robot_id}")
    with httpx.Client(base_url=harbor.api_url, event_hooks=hooks) as anonymous:
        anonymous.get("/robots")
        anonymous.patch("/robots/1", json={})
    ci = ("robot$idp+ci", harbor.robot_secret("robot$idp+ci"))
    with httpx.Client(base_url=harbor.api_url, auth=ci, event_hooks=hooks) as weak_robot:
        weak_robot.patch("/robots/1", json={})
    harbor.server.faults.add(path="/robots", statuses=[500])
    try:
        with httpx.Client(base_url=harbor.api_url, auth=ADMIN, event_hooks=hooks) as admin:
            admin.get("/robots")
    finally:
        harbor.server.faults.clear()

    checked = {(op.method, op.template) for op in map(check_response, seen)}
    everything = {(op.method, op.template) for op in operations()}
    assert checked == everything
    statuses = {r.status_code for r in seen}
    assert {200, 201, 400, 401, 403, 404, 409, 500} <= statuses


def test_every_block_request_validates(harbor: HarborSandbox) -> None:
    block = HarborProvider(url=harbor.url, username=ROTATOR[0], password=ROTATOR[1])
    sent: list[httpx.Request] = []
    received: list[httpx.Response] = []

    def keep(response: httpx.Response) -> None:
        response.read()
        received.append(response)

    block.get_client().event_hooks = {"request": [sent.append], "response": [keep]}
    robot = block.find_robot("ci", project="idp")
    block.find_robot("idp-rotator")
    block.refresh_robot_secret(robot.id)
    block.health()
    with pytest.raises(DomainError):  # not found: exercises the fallback listing too
        block.find_robot("ghost", project="idp")

    used = {(op.method, op.template) for op in map(check_request, sent)}
    assert used == {
        ("get", "/projects/{project_name_or_id}"),
        ("get", "/robots"),
        ("patch", "/robots/{robot_id}"),
        ("get", "/health"),
    }
    for response in received:
        check_response(response)
