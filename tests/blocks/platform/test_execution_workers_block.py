"""ExecutionWorkers against a live execution-workers service over the sandbox: both
provider interfaces, the one-call rotation, and the error contract (service codes rebuilt
into core.errors, transport failures translated, no httpx exception escapes)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from blocks.models import BindingRecord, BindingSpec, StoredSecret
from blocks.platform.execution_workers import ExecutionWorkers
from blocks.ports import GitOpsVerifier, GitProvider, RegistryProvider, SecretBindings, SecretStore
from core.errors import DomainError
from core.settings import reset_settings
from sandbox.run import HARBOR_PROJECT, Sandbox
from sandbox.server import SandboxServer
from services.platform.execution_workers.app import create_app
from tests.services.platform.control_plane.live import LiveServer
from tests.services.platform.execution_workers.support import (
    TOKEN,
    closed_port_url,
    unique,
    workers_settings,
)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as running:
        yield running


@pytest.fixture(autouse=True)
def _no_fault_leaks(sandbox: Sandbox) -> Iterator[None]:
    yield
    for server in sandbox.servers.values():
        server.faults.clear()


@pytest.fixture(scope="module")
def service_url(sandbox: Sandbox) -> Iterator[str]:
    settings = workers_settings(sandbox, INTERNAL_AUTH_TOKEN=SecretStr(TOKEN))
    with LiveServer(create_app(settings)) as server:
        yield server.url


@pytest.fixture
def workers(service_url: str) -> Iterator[ExecutionWorkers]:
    block = ExecutionWorkers(url=service_url, internal_token=SecretStr(TOKEN), timeout_seconds=10)
    yield block
    block.close()


def test_it_plays_every_role_but_the_registry() -> None:
    for role in (GitProvider, SecretStore, SecretBindings, GitOpsVerifier):
        assert issubclass(ExecutionWorkers, role)
    assert not issubclass(ExecutionWorkers, RegistryProvider)
    assert ExecutionWorkers.get_block_type_slug() == "idp-execution-workers"


def test_from_env_reads_the_url_and_the_internal_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXECUTION_WORKERS_URL", "http://workers:8081")
    monkeypatch.setenv("INTERNAL_AUTH_TOKEN", TOKEN)
    reset_settings()
    block = ExecutionWorkers.from_env()
    assert block.url == "http://workers:8081"
    assert block.internal_token is not None
    assert block.internal_token.get_secret_value() == TOKEN


def test_repository_protection_and_files(workers: ExecutionWorkers, sandbox: Sandbox) -> None:
    name = unique("appenv-env")
    created = workers.ensure_repository(name, description="env")
    adopted = workers.ensure_repository(name, description="env")
    protection = workers.ensure_branch_protection(name)
    files = workers.ensure_files(name, {"catalog-info.yaml": "kind: Component\n"}, message="m")

    assert (created.created, adopted.created) == (True, False)
    assert protection.required_approving_review_count == 1 and protection.changed
    assert files == ["catalog-info.yaml"]
    repo = sandbox.github.state()["repos"][f"{sandbox.github.org}/{name}"]
    assert repo["branches"]["main"]["protected"] is True
    assert "catalog-info.yaml" in repo["files"]["main"]


def test_secrets_bindings_and_gitops(workers: ExecutionWorkers, sandbox: Sandbox) -> None:
    env = unique("env")
    stored = workers.provision_secrets(env, "payments", ["db"])
    bindings = workers.create_secret_bindings(
        [BindingRecord(secret_id="db", environment_id=env, target=f"k8s:{env}/db")]
    )
    status = workers.verify_gitops(env, f"appenv-{env}")

    assert stored == [StoredSecret(backend="http", path=f"appenv/{env}/db", version=1)]
    assert [(b.secret_id, b.environment_id) for b in bindings] == [("db", env)]
    assert status.reconciled is True
    assert workers.create_secret_bindings([]) == []


def test_the_undo_of_each_side_effect_goes_through_the_service(
    workers: ExecutionWorkers, sandbox: Sandbox
) -> None:
    env = unique("env")
    name = f"appenv-{env}"
    workers.ensure_repository(name)
    workers.provision_secrets(env, "payments", ["db", "api"])
    binding = BindingRecord(secret_id="db", environment_id=env, target=f"k8s:{env}/db")
    workers.create_secret_bindings([binding])

    assert workers.delete_secret_bindings_if_present([binding]) == [binding]
    assert workers.delete_secret_bindings_if_present([binding]) == []
    assert workers.delete_secret_bindings_if_present([]) == []
    assert workers.delete_secrets_if_present(env, ["db", "never"]) == ["db"]
    assert workers.delete_secrets_if_present(env, ["db"]) == []
    assert workers.delete_repository_if_present(name) is True
    assert workers.delete_repository_if_present(name) is False
    assert f"{sandbox.github.org}/{name}" not in sandbox.github.state()["repos"]
    left = [s["name"] for s in sandbox.endpoints.state()["secrets"] if s["environment_id"] == env]
    assert left == ["api"]


def test_a_forbidden_delete_comes_back_as_forbidden(
    workers: ExecutionWorkers, sandbox: Sandbox
) -> None:
    name = unique("repo")
    workers.ensure_repository(name)
    sandbox.github.store.delete_repo_scope = False
    try:
        with pytest.raises(DomainError) as caught:
            workers.delete_repository_if_present(name)
    finally:
        sandbox.github.store.delete_repo_scope = True
    assert (caught.value.code, caught.value.upstream_status) == ("forbidden", 403)
    assert caught.value.retryable is False


def test_a_rotated_value_goes_in_and_only_its_location_comes_back(
    workers: ExecutionWorkers, sandbox: Sandbox
) -> None:
    secret_id, env = unique("harbor"), unique("env")
    value = SecretStr("r0tated-" + unique("v"))
    stored = workers.store_secret_value(secret_id, value)
    again = workers.store_secret_value(secret_id, value)
    bindings = workers.update_secret_bindings(
        secret_id, stored, [BindingSpec(environment_id=env, target=f"k8s:{env}/registry")]
    )

    assert stored == again == StoredSecret(backend="http", path=f"secrets/{secret_id}", version=1)
    assert sandbox.endpoints.secret_value(secret_id) == value.get_secret_value()
    assert [(b.environment_id, b.version) for b in bindings] == [(env, 1)]


def test_the_service_can_rotate_harbor_itself(workers: ExecutionWorkers, sandbox: Sandbox) -> None:
    secret_id, env, run = unique("harbor"), unique("env"), unique("run")
    targets = [BindingSpec(environment_id=env, target=f"k8s:{env}/registry")]
    first = workers.rotate_robot_secret(
        secret_id, "ci", project=HARBOR_PROJECT, rotation_id=run, bindings=targets
    )
    replay = workers.rotate_robot_secret(
        secret_id, "ci", project=HARBOR_PROJECT, rotation_id=run, bindings=targets
    )

    assert (first.rotated, replay.rotated) == (True, False)
    assert first.stored == replay.stored
    assert first.robot is not None and first.robot.name == f"robot${HARBOR_PROJECT}+ci"
    value = sandbox.harbor.robot_secret(f"robot${HARBOR_PROJECT}+ci")
    assert sandbox.endpoints.secret_value(secret_id) == value
    assert value not in repr(first)


@pytest.mark.parametrize(
    ("upstream", "code", "retryable"),
    [
        (401, "unauthorized", False),
        (403, "forbidden", False),
        (404, "not_found", False),
        (409, "conflict", False),
        (422, "invalid_input", False),
        (429, "rate_limited", True),
        (500, "upstream_unavailable", True),
        (503, "upstream_unavailable", True),
    ],
)
def test_service_errors_are_rebuilt_into_their_class(
    workers: ExecutionWorkers, sandbox: Sandbox, upstream: int, code: str, retryable: bool
) -> None:
    sandbox.endpoints.server.faults.add(
        statuses=[upstream], path="/appenv/gitops-verify", retry_after=5
    )
    with pytest.raises(DomainError) as caught:
        workers.verify_gitops(unique("env"), "appenv-x")
    assert (caught.value.code, caught.value.retryable) == (code, retryable)
    if code == "rate_limited":
        assert caught.value.details["retry_after"] == 5


def test_a_wrong_token_is_unauthorized(service_url: str) -> None:
    block = ExecutionWorkers(url=service_url, internal_token=SecretStr("wrong"))
    with pytest.raises(DomainError) as caught:
        block.verify_gitops("env-1", "appenv-env-1")
    assert caught.value.code == "unauthorized" and caught.value.upstream_status == 401


def test_a_service_that_is_down_is_upstream_unavailable() -> None:
    block = ExecutionWorkers(url=closed_port_url())
    with pytest.raises(DomainError) as caught:
        block.ensure_repository("r")
    assert (caught.value.code, caught.value.retryable) == ("upstream_unavailable", True)
    assert caught.value.__cause__ is None and caught.value.__context__ is None


def test_a_slow_service_is_upstream_timeout(service_url: str, sandbox: Sandbox) -> None:
    sandbox.endpoints.server.faults.add(path="/appenv/gitops-verify", latency_ms=800, times=1)
    block = ExecutionWorkers(url=service_url, internal_token=SecretStr(TOKEN), timeout_seconds=0.2)
    with pytest.raises(DomainError) as caught:
        block.verify_gitops("env-1", "appenv-env-1")
    assert (caught.value.code, caught.value.retryable) == ("upstream_timeout", True)


def _odd_answers(request: Request) -> Response:
    kind = request.url.path.rsplit("/", 1)[-1]
    if kind == "gitops-verify":  # a proxy's page instead of the service
        return PlainTextResponse("<html>bad gateway</html>", status_code=502)
    if kind == "secrets":  # a code this client does not know
        body = {"error": {"code": "internal_error", "message": "boom", "details": {}}}
        return JSONResponse(body, status_code=500)
    return JSONResponse({"unexpected": True})  # 200 with a body of another shape


@pytest.fixture(scope="module")
def odd_service() -> Iterator[str]:
    route = Route("/{path:path}", _odd_answers, methods=["POST"])
    with SandboxServer("odd", [route], dict, lambda status: {}) as server:
        yield server.url


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda b: b.verify_gitops("e", "r"), "upstream_unavailable"),
        (lambda b: b.provision_secrets("e", "a", ["db"]), "upstream_unavailable"),
        (lambda b: b.ensure_repository("r"), "upstream_rejected"),
    ],
    ids=["proxy-502", "unknown-code-500", "unexpected-shape"],
)
def test_answers_that_are_not_ours_still_become_domain_errors(
    odd_service: str, call: Callable[[ExecutionWorkers], object], code: str
) -> None:
    block = ExecutionWorkers(url=odd_service)
    with pytest.raises(DomainError) as caught:
        call(block)
    block.close()  # an idle keep-alive connection would hold the server's shutdown
    assert caught.value.code == code
