"""HttpSecretBackend against the secret endpoints sandbox: the five operations, internal
auth, and the error contract."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import httpx
import pytest
from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from blocks.models import BindingRecord, BindingSpec, StoredSecret
from blocks.secret_endpoints import HttpSecretBackend
from core.errors import DomainError
from core.internal_auth import INTERNAL_TOKEN_HEADER
from sandbox.secret_endpoints import SecretEndpointsSandbox
from sandbox.server import SandboxServer

ENV_VARS = (
    "APPENV_SECRETS_ENDPOINT",
    "APPENV_SECRET_BINDINGS_ENDPOINT",
    "APPENV_GITOPS_VERIFY_ENDPOINT",
    "SECRET_BINDINGS_UPDATE_ENDPOINT",
)


@pytest.fixture(scope="module")
def endpoints() -> Iterator[SecretEndpointsSandbox]:
    with SecretEndpointsSandbox() as sandbox:
        yield sandbox


@pytest.fixture(autouse=True)
def _no_faults(endpoints: SecretEndpointsSandbox) -> Iterator[None]:
    yield
    endpoints.server.faults.clear()


def backend_for(sandbox: SecretEndpointsSandbox, **kw: object) -> HttpSecretBackend:
    urls = {name.lower(): url for name, url in sandbox.endpoints().items()}
    return HttpSecretBackend(**urls, **kw)


@pytest.fixture
def backend(endpoints: SecretEndpointsSandbox) -> HttpSecretBackend:
    return backend_for(endpoints)


def _record(backend: HttpSecretBackend) -> list[httpx.Request]:
    sent: list[httpx.Request] = []
    backend.get_client().event_hooks["request"].append(sent.append)
    return sent


def test_provision_is_create_only(backend: HttpSecretBackend) -> None:
    first = backend.provision_secrets("env-1", "app-1", ["db", "api"])
    assert first == [
        StoredSecret(backend="http", path="appenv/env-1/db", version=1),
        StoredSecret(backend="http", path="appenv/env-1/api", version=1),
    ]
    assert backend.provision_secrets("env-1", "app-1", ["db", "api"]) == first


def test_store_value_adds_a_version(
    backend: HttpSecretBackend, endpoints: SecretEndpointsSandbox
) -> None:
    first = backend.store_secret_value("harbor-ci", SecretStr("one"))
    second = backend.store_secret_value("harbor-ci", SecretStr("two"))
    assert (first.version, second.version) == (1, 2)
    assert endpoints.secret_value("harbor-ci") == "two"


def test_same_bindings_twice_leave_one_binding(
    backend: HttpSecretBackend, endpoints: SecretEndpointsSandbox
) -> None:
    binding = BindingRecord(secret_id="s-1", environment_id="env-b", target="k8s:ns/name")
    assert backend.create_secret_bindings([binding]) == [binding]
    assert backend.create_secret_bindings([binding]) == [binding]
    state = endpoints.state()["bindings"]
    assert len([b for b in state if b["secret_id"] == "s-1"]) == 1


def test_gitops_verify(backend: HttpSecretBackend, endpoints: SecretEndpointsSandbox) -> None:
    backend.provision_secrets("env-g", "app", ["db"])
    assert backend.verify_gitops("env-g", "appenv-env-g").reconciled is False
    backend.create_secret_bindings(
        [BindingRecord(secret_id="s-g", environment_id="env-g", target="k8s:g/db")]
    )
    status = backend.verify_gitops("env-g", "appenv-env-g")
    assert status.reconciled is True and status.revision


def test_update_bindings_points_them_at_the_stored_version(backend: HttpSecretBackend) -> None:
    stored = backend.store_secret_value("s-u", SecretStr("value"))
    specs = [BindingSpec(environment_id="env-u", target="k8s:u/a")]
    updated = backend.update_secret_bindings("s-u", stored, specs)
    assert updated == [
        BindingRecord(secret_id="s-u", environment_id="env-u", target="k8s:u/a", version=1)
    ]
    assert backend.update_secret_bindings("s-u", stored, specs) == updated


def test_provisioned_secrets_are_deleted_once(
    backend: HttpSecretBackend, endpoints: SecretEndpointsSandbox
) -> None:
    backend.provision_secrets("env-del", "app", ["db", "api"])
    sent = _record(backend)
    first = backend.delete_secrets_if_present("env-del", ["db", "never"])
    second = backend.delete_secrets_if_present("env-del", ["db", "never"])

    assert (first, second) == (["db"], [])
    assert [str(r.url) for r in sent] == [f"{endpoints.url}/appenv/secrets/delete"] * 2
    left = [s["name"] for s in endpoints.state()["secrets"] if s["environment_id"] == "env-del"]
    assert left == ["api"]


def test_bindings_are_deleted_once_and_answered_as_they_were(
    backend: HttpSecretBackend, endpoints: SecretEndpointsSandbox
) -> None:
    binding = BindingRecord(secret_id="s-d", environment_id="env-d", target="k8s:d/a", version=3)
    backend.create_secret_bindings([binding])
    unversioned = binding.model_copy(update={"version": None})
    first = backend.delete_secret_bindings_if_present([unversioned])
    second = backend.delete_secret_bindings_if_present([unversioned])

    assert (first, second) == ([binding], [])
    assert not [b for b in endpoints.state()["bindings"] if b["secret_id"] == "s-d"]


def test_no_internal_token_header_when_not_configured(backend: HttpSecretBackend) -> None:
    sent = _record(backend)
    backend.verify_gitops("env-h", "appenv-env-h")
    assert sent and INTERNAL_TOKEN_HEADER not in sent[0].headers


def test_internal_token_is_sent_when_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    with SecretEndpointsSandbox(internal_token="tok-123") as guarded:
        for name, url in guarded.endpoints().items():
            monkeypatch.setenv(name, url)
        without = HttpSecretBackend.from_env()
        with pytest.raises(DomainError) as caught:
            without.verify_gitops("env", "repo")
        assert caught.value.code == "unauthorized"
        monkeypatch.setenv("INTERNAL_AUTH_TOKEN", "tok-123")
        from core.settings import reset_settings

        reset_settings()
        backend = HttpSecretBackend.from_env()
        sent = _record(backend)
        assert backend.verify_gitops("env", "repo").repository == "repo"
        assert sent[0].headers[INTERNAL_TOKEN_HEADER] == "tok-123"
        assert "tok-123" not in repr(backend)


@pytest.mark.parametrize("missing", ENV_VARS)
def test_from_env_names_the_missing_variable(monkeypatch: pytest.MonkeyPatch, missing: str) -> None:
    for var in ENV_VARS:
        if var != missing:
            monkeypatch.setenv(var, "http://127.0.0.1:9/x")
    with pytest.raises(DomainError) as caught:
        HttpSecretBackend.from_env()
    assert caught.value.code == "invalid_input" and missing in caught.value.message


def test_unconfigured_endpoint_is_invalid_input() -> None:
    with pytest.raises(DomainError) as caught:
        HttpSecretBackend().verify_gitops("env", "repo")
    assert caught.value.code == "invalid_input"
    assert "APPENV_GITOPS_VERIFY_ENDPOINT" in caught.value.message


# -- error contract -----------------------------------------------------------------------
OPERATIONS: dict[str, Callable[[HttpSecretBackend], object]] = {
    "provision": lambda b: b.provision_secrets("env-e", "app", ["db"]),
    "store": lambda b: b.store_secret_value("s-e", SecretStr("v")),
    "bind": lambda b: b.create_secret_bindings(
        [BindingRecord(secret_id="s", environment_id="e", target="t")]
    ),
    "verify": lambda b: b.verify_gitops("env-e", "repo"),
    "delete": lambda b: b.delete_secrets_if_present("env-e", ["db"]),
    "unbind": lambda b: b.delete_secret_bindings_if_present(
        [BindingRecord(secret_id="s", environment_id="e", target="t")]
    ),
    "update": lambda b: b.update_secret_bindings(
        "s",
        StoredSecret(backend="x", path="p", version=1),
        [BindingSpec(environment_id="e", target="t")],
    ),
}


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
@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_error_contract(
    backend: HttpSecretBackend,
    endpoints: SecretEndpointsSandbox,
    operation: str,
    status: int,
    code: str,
    retryable: bool,
) -> None:
    endpoints.server.faults.add(statuses=[status], retry_after=5)
    with pytest.raises(DomainError) as caught:
        OPERATIONS[operation](backend)
    error = caught.value
    assert (error.code, error.retryable, error.upstream_status) == (code, retryable, status)
    assert error.details["vendor_code"]  # the platform code of the body, e.g. rate_limited
    if status == 429:
        assert error.retry_after == 5


def test_timeout(endpoints: SecretEndpointsSandbox) -> None:
    endpoints.server.faults.add(latency_ms=600)
    with pytest.raises(DomainError) as caught:
        OPERATIONS["verify"](backend_for(endpoints, timeout_seconds=0.2))
    assert (caught.value.code, caught.value.retryable) == ("upstream_timeout", True)


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_refused_connection(operation: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    backend = HttpSecretBackend(**{var.lower(): f"{base}/{var.lower()}" for var in ENV_VARS})
    with pytest.raises(DomainError) as caught:
        OPERATIONS[operation](backend)
    assert (caught.value.code, caught.value.retryable) == ("upstream_unavailable", True)


async def _odd_json(request: Request) -> Response:
    return JSONResponse({"unexpected": True})


async def _odd_text(request: Request) -> Response:
    return PlainTextResponse("<html>ok</html>")


@pytest.mark.parametrize("path", ["/json", "/text"])
def test_a_200_in_another_shape_is_upstream_rejected(path: str) -> None:
    routes = [
        Route("/json", _odd_json, methods=["POST"]),
        Route("/text", _odd_text, methods=["POST"]),
    ]
    with SandboxServer("odd", routes, dict, lambda status: {}) as odd:
        backend = HttpSecretBackend(appenv_gitops_verify_endpoint=odd.url + path)
        with pytest.raises(DomainError) as caught:
            backend.verify_gitops("env", "repo")
    assert caught.value.code == "upstream_rejected"


def test_a_url_without_scheme_is_a_configuration_error() -> None:
    backend = HttpSecretBackend(appenv_gitops_verify_endpoint="secrets.example.com/verify")
    with pytest.raises(DomainError) as caught:
        backend.verify_gitops("env", "repo")
    assert (caught.value.code, caught.value.retryable) == ("invalid_input", False)
