"""HarborProvider against the Harbor sandbox: lookup, rotation and the error contract."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr

from blocks.harbor import HarborProvider
from core.errors import DomainError
from sandbox.harbor import DEFAULT_ROBOTS, HarborSandbox, RobotSpec
from sandbox.harbor_store import ROTATOR_PERMISSIONS

ROTATOR = "robot$idp-rotator"
ENV_VARS = ("HARBOR_URL", "HARBOR_ROBOT_USERNAME", "HARBOR_ROBOT_PASSWORD")


@pytest.fixture(scope="module")
def harbor() -> Iterator[HarborSandbox]:
    extra = [RobotSpec(f"bot-{i:04d}", project="idp") for i in range(1000)]
    with HarborSandbox(robots=(*DEFAULT_ROBOTS, *extra)) as sandbox:
        yield sandbox


@pytest.fixture(autouse=True)
def _no_faults(harbor: HarborSandbox) -> Iterator[None]:
    yield
    harbor.server.faults.clear()


def _block(harbor: HarborSandbox, username: str = ROTATOR, **kw: object) -> HarborProvider:
    password = kw.pop("password", None) or harbor.robot_secret(username)
    return HarborProvider(url=harbor.url, username=username, password=password, **kw)


@pytest.fixture
def block(harbor: HarborSandbox) -> HarborProvider:
    return _block(harbor)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_find_system_robot(block: HarborProvider) -> None:
    robot = block.find_robot("idp-rotator")
    assert (robot.name, robot.level, robot.project) == (ROTATOR, "system", None)


def test_find_project_robot(block: HarborProvider, harbor: HarborSandbox) -> None:
    robot = block.find_robot("ci", project="idp")
    assert robot.name == "robot$idp+ci" and robot.level == "project"
    assert robot.id == harbor.robot_id("robot$idp+ci")


def test_project_lookup_among_a_thousand_robots_takes_two_calls(
    block: HarborProvider,
) -> None:
    sent: list[httpx.Request] = []
    block.get_client().event_hooks["request"].append(sent.append)
    robot = block.find_robot("bot-0999", project="idp")
    assert robot.name == "robot$idp+bot-0999"
    assert len(sent) == 2  # project id, then one exact-name query


def test_missing_robot_is_not_found_after_paging(block: HarborProvider) -> None:
    with pytest.raises(DomainError) as caught:
        block.find_robot("ghost", project="idp")
    assert caught.value.code == "not_found"


def test_system_lookup_does_not_return_project_robots(block: HarborProvider) -> None:
    with pytest.raises(DomainError) as caught:
        block.find_robot("ci")
    assert caught.value.code == "not_found"


@pytest.mark.parametrize("name, project", [("Bad,Level=system", None), ("ci", "a,b")])
def test_names_that_could_inject_query_terms_are_invalid(
    block: HarborProvider, name: str, project: str | None
) -> None:
    with pytest.raises(DomainError) as caught:
        block.find_robot(name, project=project)
    assert caught.value.code == "invalid_input"


def test_refresh_issues_new_secret_and_old_one_stops_working(harbor: HarborSandbox) -> None:
    harbor.add_robots([RobotSpec("rotating-self", permissions=ROTATOR_PERMISSIONS)])
    name = "robot$rotating-self"
    old = harbor.robot_secret(name)
    block = _block(harbor, name, password=old)
    robot = block.find_robot("rotating-self")
    new = block.refresh_robot_secret(robot.id)
    assert isinstance(new, SecretStr) and new.get_secret_value() != old
    with pytest.raises(DomainError) as caught:  # the same block still holds the old secret
        block.find_robot("rotating-self")
    assert caught.value.code == "unauthorized"
    renewed = _block(harbor, name, password=new.get_secret_value())
    assert renewed.find_robot("rotating-self").id == robot.id


def test_rotating_a_project_robot_refuses_its_old_secret(
    block: HarborProvider, harbor: HarborSandbox
) -> None:
    robot = block.find_robot("deployer", project="idp")
    old = harbor.robot_secret(robot.name)
    new = block.refresh_robot_secret(robot.id).get_secret_value()
    url = f"{harbor.api_url}/robots/{robot.id}"
    assert httpx.get(url, auth=(robot.name, old)).status_code == 401
    # The new secret authenticates; this robot may pull images but not read robots.
    assert httpx.get(url, auth=(robot.name, new)).status_code == 403


def test_health(block: HarborProvider) -> None:
    assert block.health()["status"] == "healthy"


def test_one_client_per_block_is_reused(block: HarborProvider) -> None:
    assert block.get_client() is block.get_client()
    block.get_client().close()
    assert not block.get_client().is_closed


def test_from_env(monkeypatch: pytest.MonkeyPatch, harbor: HarborSandbox) -> None:
    monkeypatch.setenv("HARBOR_URL", harbor.url)
    monkeypatch.setenv("HARBOR_ROBOT_USERNAME", ROTATOR)
    monkeypatch.setenv("HARBOR_ROBOT_PASSWORD", harbor.robot_secret(ROTATOR))
    block = HarborProvider.from_env()
    assert block.find_robot("ci", project="idp").name == "robot$idp+ci"


@pytest.mark.parametrize(
    "missing", ["HARBOR_URL", "HARBOR_ROBOT_USERNAME", "HARBOR_ROBOT_PASSWORD"]
)
def test_from_env_names_the_missing_variable(monkeypatch: pytest.MonkeyPatch, missing: str) -> None:
    for var in ("HARBOR_URL", "HARBOR_ROBOT_USERNAME", "HARBOR_ROBOT_PASSWORD"):
        if var != missing:
            monkeypatch.setenv(var, "x")
    with pytest.raises(DomainError) as caught:
        HarborProvider.from_env()
    assert caught.value.code == "invalid_input" and missing in caught.value.message


def test_block_secrets_do_not_show(block: HarborProvider) -> None:
    assert "SandboxRotator1" not in repr(block) and "SandboxRotator1" not in str(block)


# -- error contract -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "status, code, retryable",
    [
        (400, "invalid_input", False),
        (401, "unauthorized", False),
        (403, "forbidden", False),
        (404, "not_found", False),
        (409, "conflict", False),
        (412, "precondition_failed", False),
        (422, "invalid_input", False),
        (429, "rate_limited", True),
        (500, "upstream_unavailable", True),
        (502, "upstream_unavailable", True),
        (503, "upstream_unavailable", True),
        (504, "upstream_unavailable", True),
    ],
)
def test_error_contract(
    block: HarborProvider, harbor: HarborSandbox, status: int, code: str, retryable: bool
) -> None:
    harbor.server.faults.add(path="/robots/", method="PATCH", statuses=[status], retry_after=7)
    with pytest.raises(DomainError) as caught:
        block.refresh_robot_secret(harbor.robot_id("robot$idp+ci"))
    error = caught.value
    assert (error.code, error.retryable, error.upstream_status) == (code, retryable, status)
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
    if status == 429:
        assert error.details["retry_after"] == 7
    if status < 500:
        assert error.details["vendor_code"]  # Harbor's code, e.g. CONFLICT


def test_real_401_and_403(harbor: HarborSandbox) -> None:
    with pytest.raises(DomainError) as wrong:
        _block(harbor, password="Wrong-password1").find_robot("ci", project="idp")
    assert wrong.value.code == "unauthorized"
    with pytest.raises(DomainError) as denied:
        _block(harbor, "robot$idp+ci").refresh_robot_secret(1)
    assert denied.value.code == "forbidden"


def test_real_404_for_unknown_robot_id(block: HarborProvider) -> None:
    with pytest.raises(DomainError) as caught:
        block.refresh_robot_secret(987654)
    assert caught.value.code == "not_found"


def test_timeout(harbor: HarborSandbox) -> None:
    harbor.server.faults.add(path="/robots", latency_ms=600)
    with pytest.raises(DomainError) as caught:
        _block(harbor, timeout_seconds=0.2).find_robot("idp-rotator")
    assert (caught.value.code, caught.value.retryable) == ("upstream_timeout", True)


def test_refused_connection() -> None:
    block = HarborProvider(url=f"http://127.0.0.1:{_closed_port()}", username="u", password="p")
    for call in (
        lambda: block.find_robot("x"),
        lambda: block.refresh_robot_secret(1),
        block.health,
    ):
        with pytest.raises(DomainError) as caught:
            call()
        assert (caught.value.code, caught.value.retryable) == ("upstream_unavailable", True)


def test_non_json_proxy_answer_is_still_translated(harbor: HarborSandbox) -> None:
    # Point the block at a server that answers plain-text 404s (like a misrouted proxy).
    block = HarborProvider(url=harbor.url + "/elsewhere", username="u", password="p")
    with pytest.raises(DomainError) as caught:
        block.health()
    assert caught.value.code == "not_found"


def test_no_secret_in_error_messages(harbor: HarborSandbox) -> None:
    harbor.server.faults.add(path="/robots", statuses=[503])
    secret = harbor.robot_secret(ROTATOR)
    with pytest.raises(DomainError) as caught:
        _block(harbor).find_robot("idp-rotator")
    assert secret not in str(caught.value) and secret not in repr(caught.value.details)


def test_a_url_without_scheme_is_a_configuration_error() -> None:
    block = HarborProvider(url="harbor.example.com", username="u", password="p")
    with pytest.raises(DomainError) as caught:
        block.health()
    assert (caught.value.code, caught.value.retryable) == ("invalid_input", False)
