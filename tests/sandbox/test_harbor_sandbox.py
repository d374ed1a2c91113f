"""The Harbor sandbox behaves like Harbor where clients can tell the difference."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from sandbox.harbor import DEFAULT_ROBOTS, HarborSandbox, RobotSpec
from sandbox.harbor_store import ROTATOR_PERMISSIONS

ADMIN = ("admin", "Harbor12345")
ROTATOR = ("robot$idp-rotator", "SandboxRotator1")
PULL = [{"resource": "repository", "action": "pull"}]
UNKNOWN = [{"resource": "spaceship", "action": "pull"}]


@pytest.fixture(scope="module")
def harbor() -> Iterator[HarborSandbox]:
    with HarborSandbox(projects=("idp", "123")) as sandbox:
        yield sandbox


@pytest.fixture(autouse=True)
def _no_faults(harbor: HarborSandbox) -> Iterator[None]:
    yield
    harbor.server.faults.clear()


@pytest.fixture
def admin(harbor: HarborSandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=harbor.api_url, auth=ADMIN) as client:
        yield client


def _create(
    client: httpx.Client, name: str, project: str = "idp", **extra: object
) -> httpx.Response:
    body = {
        "name": name,
        "level": "project",
        "duration": -1,
        "permissions": [{"kind": "project", "namespace": project, "access": PULL}],
        **extra,
    }
    return client.post("/robots", json=body)


def _code(response: httpx.Response) -> str:
    return str(response.json()["errors"][0]["code"])


def test_ping_and_health_need_no_auth(harbor: HarborSandbox) -> None:
    assert httpx.get(harbor.api_url + "/ping").text == "Pong"
    health = httpx.get(harbor.api_url + "/health")
    assert health.status_code == 200 and health.json()["status"] == "healthy"


def test_health_reports_an_unhealthy_component_with_200(harbor: HarborSandbox) -> None:
    harbor.set_component_health("database", False)
    try:
        health = httpx.get(harbor.api_url + "/health")
        assert health.status_code == 200
        assert health.json()["status"] == "unhealthy"
    finally:
        harbor.set_component_health("database", True)


def test_project_by_name_id_and_numeric_name(admin: httpx.Client) -> None:
    assert admin.get("/projects/idp").json()["project_id"] == 1
    assert admin.get("/projects/1").json()["name"] == "idp"
    numeric = admin.get("/projects/123", headers={"X-Is-Resource-Name": "true"})
    assert numeric.json()["name"] == "123"
    missing = admin.get("/projects/nope")
    assert missing.status_code == 404 and _code(missing) == "NOT_FOUND"


def test_private_project_needs_credentials(harbor: HarborSandbox) -> None:
    response = httpx.get(harbor.api_url + "/projects/idp")
    assert response.status_code == 401 and _code(response) == "UNAUTHORIZED"


def test_list_without_level_returns_only_system_robots(admin: httpx.Client) -> None:
    names = [r["name"] for r in admin.get("/robots").json()]
    assert "robot$idp-rotator" in names
    assert all("+" not in n for n in names)


def test_project_query_needs_project_id_and_a_valid_level(admin: httpx.Client) -> None:
    no_id = admin.get("/robots", params={"q": "Level=project"})
    assert no_id.status_code == 400
    assert "must with project ID" in no_id.json()["errors"][0]["message"]
    assert admin.get("/robots", params={"q": "Level=galaxy"}).status_code == 400


def test_exact_name_with_encoded_plus_matches_and_raw_plus_does_not(admin: httpx.Client) -> None:
    q = "Level=project,ProjectID=1,name=idp+ci"
    encoded = admin.get("/robots", params={"q": q})  # httpx sends + as %2B
    assert [r["name"] for r in encoded.json()] == ["robot$idp+ci"]
    raw = admin.get(f"/robots?q={q}")  # a raw + is a space once decoded
    assert raw.json() == []


def test_fuzzy_name_match(admin: httpx.Client) -> None:
    found = admin.get("/robots", params={"q": "Level=project,ProjectID=1,name=~deploy"}).json()
    assert [r["name"] for r in found] == ["robot$idp+deployer"]


def test_get_never_returns_the_secret(harbor: HarborSandbox, admin: httpx.Client) -> None:
    robot_id = harbor.robot_id("robot$idp+ci")
    body = admin.get(f"/robots/{robot_id}").json()
    assert body["name"] == "robot$idp+ci" and "secret" not in body
    listed = admin.get("/robots", params={"q": "Level=project,ProjectID=1"}).json()
    assert all("secret" not in r for r in listed)


def test_get_unknown_and_malformed_ids(admin: httpx.Client) -> None:
    missing = admin.get("/robots/99999")
    assert missing.status_code == 404 and "robot 99999 not found" in missing.text
    assert admin.get("/robots/abc").status_code == 422


def test_create_returns_secret_and_location_then_409(admin: httpx.Client) -> None:
    created = _create(admin, "builder")
    assert created.status_code == 201
    body = created.json()
    assert body["name"] == "robot$idp+builder" and body["secret"]
    assert created.headers["location"] == f"/api/v2.0/robots/{body['id']}"
    again = _create(admin, "builder")
    assert again.status_code == 409 and _code(again) == "CONFLICT"
    assert "already exists" in again.json()["errors"][0]["message"]


@pytest.mark.parametrize(
    "override, status",
    [
        ({"name": "Bad+Name"}, 400),
        ({"name": ""}, 400),
        ({"permissions": []}, 400),
        ({"permissions": [{"kind": "project", "namespace": "idp", "access": UNKNOWN}]}, 400),
        ({"level": "galaxy"}, 400),
        ({"duration": 0}, 400),
        ({"duration": "forever"}, 422),
        ({"permissions": [{"kind": "project", "namespace": "ghost", "access": PULL}]}, 404),
    ],
)  # fmt: skip
def test_create_rejects_bad_input(admin: httpx.Client, override: dict, status: int) -> None:
    body = {
        "name": "valid-name",
        "level": "project",
        "duration": -1,
        "permissions": [{"kind": "project", "namespace": "idp", "access": PULL}],
    }
    response = admin.post("/robots", json={**body, **override})
    assert response.status_code == status
    assert response.json()["errors"][0]["code"]


def test_refresh_issues_new_secret_and_old_one_is_refused(
    harbor: HarborSandbox, admin: httpx.Client
) -> None:
    harbor.add_robots([RobotSpec("refresher", permissions=ROTATOR_PERMISSIONS)])
    name = "robot$refresher"
    old = harbor.robot_secret(name)
    robot_id = harbor.robot_id(name)
    assert httpx.get(harbor.api_url + "/robots", auth=(name, old)).status_code == 200
    refreshed = admin.patch(f"/robots/{robot_id}", json={})
    assert refreshed.status_code == 200
    new = refreshed.json()["secret"]
    assert new and new != old
    denied = httpx.get(harbor.api_url + "/robots", auth=(name, old))
    assert denied.status_code == 401 and _code(denied) == "UNAUTHORIZED"
    assert httpx.get(harbor.api_url + "/robots", auth=(name, new)).status_code == 200


def test_refresh_with_empty_secret_generates_one(
    harbor: HarborSandbox, admin: httpx.Client
) -> None:
    robot_id = harbor.robot_id("robot$idp+deployer")
    body = admin.patch(f"/robots/{robot_id}", json={"secret": ""}).json()
    assert body["secret"] == harbor.robot_secret("robot$idp+deployer")


def test_refresh_with_chosen_secret(harbor: HarborSandbox, admin: httpx.Client) -> None:
    robot_id = _create(admin, "chosen").json()["id"]
    ok = admin.patch(f"/robots/{robot_id}", json={"secret": "Chosen-Secret-1"})
    assert ok.status_code == 200 and not ok.json().get("secret")
    assert harbor.robot_secret("robot$idp+chosen") == "Chosen-Secret-1"
    weak = admin.patch(f"/robots/{robot_id}", json={"secret": "weak"})
    assert weak.status_code == 400 and "8-128" in weak.json()["errors"][0]["message"]


def test_refresh_errors(harbor: HarborSandbox, admin: httpx.Client) -> None:
    assert admin.patch("/robots/99999", json={}).status_code == 404
    robot_id = harbor.robot_id("robot$idp+deployer")
    assert admin.patch(f"/robots/{robot_id}").status_code == 422  # no body at all
    ci = ("robot$idp+ci", harbor.robot_secret("robot$idp+ci"))
    forbidden = httpx.patch(f"{harbor.api_url}/robots/{robot_id}", json={}, auth=ci)
    assert forbidden.status_code == 403 and _code(forbidden) == "FORBIDDEN"


def test_rotator_can_rotate_project_robots(harbor: HarborSandbox) -> None:
    robot_id = harbor.robot_id("robot$idp+deployer")
    response = httpx.patch(f"{harbor.api_url}/robots/{robot_id}", json={}, auth=ROTATOR)
    assert response.status_code == 200 and response.json()["secret"]


def test_wrong_credentials_run_as_anonymous(harbor: HarborSandbox) -> None:
    response = httpx.get(harbor.api_url + "/robots", auth=("admin", "wrong"))
    assert response.status_code == 401
    assert response.json() == {"errors": [{"code": "UNAUTHORIZED", "message": "unauthorized"}]}


def test_update_and_delete(harbor: HarborSandbox, admin: httpx.Client) -> None:
    robot_id = _create(admin, "short-lived").json()["id"]
    robot = admin.get(f"/robots/{robot_id}").json()
    assert admin.put(f"/robots/{robot_id}", json={**robot, "description": "x"}).status_code == 200
    assert admin.get(f"/robots/{robot_id}").json()["description"] == "x"
    renamed = admin.put(f"/robots/{robot_id}", json={**robot, "name": "robot$idp+other"})
    assert renamed.status_code == 400
    assert admin.delete(f"/robots/{robot_id}").status_code == 200
    assert admin.get(f"/robots/{robot_id}").status_code == 404


def test_injected_5xx_is_sanitised(harbor: HarborSandbox, admin: httpx.Client) -> None:
    harbor.server.faults.add(path="/robots", statuses=[502])
    response = admin.get("/robots")
    assert response.status_code == 502
    assert response.json() == {"errors": [{"code": "UNKNOWN", "message": "internal server error"}]}


def test_unknown_route_answers_in_harbor_format(admin: httpx.Client) -> None:
    response = admin.get("/artifacts")
    assert response.status_code == 404 and _code(response) == "NOT_FOUND"


def test_state_is_served_without_secrets(harbor: HarborSandbox) -> None:
    state = httpx.get(harbor.url + "/_sandbox/state").json()
    assert {"robot$idp+ci", "robot$idp-rotator"} <= {r["name"] for r in state["robots"]}
    text = json.dumps(state)
    for name in ("robot$idp+ci", "robot$idp+deployer", "robot$idp-rotator"):
        assert harbor.robot_secret(name) not in text


def test_thousand_robots_page_and_find_fast() -> None:
    extra = [RobotSpec(f"bot-{i:04d}", project="idp") for i in range(1000)]
    started = time.perf_counter()
    harbor = HarborSandbox(robots=(*DEFAULT_ROBOTS, *extra))
    with harbor, httpx.Client(base_url=harbor.api_url, auth=ROTATOR) as client:
        q = {"q": "Level=project,ProjectID=1", "page_size": 100, "page": 2}
        page = client.get("/robots", params=q)
        assert page.headers["x-total-count"] == "1002"
        assert len(page.json()) == 100
        assert 'rel="prev"' in page.headers["link"] and 'rel="next"' in page.headers["link"]
        exact = {"q": "Level=project,ProjectID=1,name=idp+bot-0999"}
        found = client.get("/robots", params=exact).json()
        assert [r["name"] for r in found] == ["robot$idp+bot-0999"]
        assert client.get("/robots", params={"page_size": 101}).status_code == 422
    assert time.perf_counter() - started < 10
