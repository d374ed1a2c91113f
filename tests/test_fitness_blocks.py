"""Fitness function: whatever an upstream does, a block raises a ``core.errors`` code.

Every provider method of every block (and every ControlPlane call) is run against an
upstream that misbehaves in the ways real ones do: refusing connections, answering 5xx
HTML from a proxy, rate limiting, 200 with a body that is not JSON or not the expected
shape, 401/404 with no body. Each call must raise a ``DomainError`` with a published
code, show no vendor exception in its traceback (it would carry URLs, headers and bodies
into logs) and name no credential. The one exception is an undo whose provider's 404
means "already gone" (``ALREADY_GONE``): it must then return exactly its "nothing was
there" value. The per-block tests check the precise code for each status; this one
checks that nothing else ever escapes, and that every port method is probed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import SecretStr
from starlette.types import Receive, Scope, Send

from blocks.github import GitHubProvider
from blocks.harbor import HarborProvider
from blocks.models import BindingRecord, BindingSpec, StoredSecret
from blocks.platform.control_plane import ControlPlane
from blocks.platform.domain import (
    Aggregate,
    ApplicationStatus,
    EnvironmentStatus,
    EventName,
    SecretStatus,
)
from blocks.platform.execution_workers import ExecutionWorkers
from blocks.ports import (
    GitOpsVerifier,
    GitProvider,
    RegistryProvider,
    SecretBindings,
    SecretStore,
)
from blocks.secret_endpoints import HttpSecretBackend
from blocks.vault import VaultSecretBackend
from core.errors import DomainError, all_error_classes
from idp.stack import free_port
from sandbox.server import LoopbackServer

TOKEN = "fitness-token-0123456789"
CODES = {cls.code for cls in all_error_classes()}


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[bytes, bytes], ...] = ()


MISBEHAVIOURS = {
    "5xx html from a proxy": Answer(502, b"<html><body>Bad gateway</body></html>", "text/html"),
    "rate limited": Answer(429, b'{"message": "slow down"}', headers=((b"retry-after", b"1"),)),
    "200 not json": Answer(200, b"hello", "text/plain"),
    "200 unexpected shape": Answer(200, b'{"unexpected": [1, 2, 3]}'),
    "401 empty": Answer(401, b"", "text/plain"),
    "404 empty": Answer(404, b"", "text/plain"),
}


class Upstream:
    """Answers every request with the current ``answer``."""

    def __init__(self) -> None:
        self.answer = MISBEHAVIOURS["200 not json"]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        answer = self.answer
        headers = [(b"content-type", answer.content_type.encode()), *answer.headers]
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[Upstream, str]]:
    app = Upstream()
    with LoopbackServer(app, name="misbehaving-upstream") as server:
        yield app, server.url


def endpoints(url: str) -> HttpSecretBackend:
    return HttpSecretBackend(
        appenv_secrets_endpoint=f"{url}/appenv/secrets",
        appenv_secret_bindings_endpoint=f"{url}/appenv/secret-bindings",
        appenv_gitops_verify_endpoint=f"{url}/appenv/gitops-verify",
        secret_bindings_update_endpoint=f"{url}/secrets/bindings/update",
        internal_token=SecretStr(TOKEN),
        timeout_seconds=5,
    )


BLOCKS: dict[str, Callable[[str], Any]] = {
    "github": lambda url: GitHubProvider(
        base_url=f"{url}/api/v3", token=SecretStr(TOKEN), org="acme", timeout_seconds=5
    ),
    "harbor": lambda url: HarborProvider(
        url=url, username="robot$rotator", password=SecretStr(TOKEN), timeout_seconds=5
    ),
    "vault": lambda url: VaultSecretBackend(addr=url, token=SecretStr(TOKEN), timeout_seconds=5),
    "secret-endpoints": endpoints,
    "control-plane": lambda url: ControlPlane(
        url=url, internal_token=SecretStr(TOKEN), timeout_seconds=5
    ),
    "execution-workers": lambda url: ExecutionWorkers(
        url=url, internal_token=SecretStr(TOKEN), timeout_seconds=5
    ),
}
STORED = StoredSecret(backend="vault", path="secret/idp/secrets/db", version=2)
BINDING = BindingRecord(secret_id="db", environment_id="pay-dev", target="k8s:pay-dev/db")
GIT_CALLS: dict[str, Callable[[Any], Any]] = {
    "ensure_repository": lambda b: b.ensure_repository("appenv-pay-dev"),
    "ensure_branch_protection": lambda b: b.ensure_branch_protection("appenv-pay-dev"),
    "ensure_files": lambda b: b.ensure_files("appenv-pay-dev", {"a.md": "x"}, message="m"),
    "delete_repository_if_present": lambda b: b.delete_repository_if_present("appenv-pay-dev"),
}
STORE_CALLS: dict[str, Callable[[Any], Any]] = {
    "provision_secrets": lambda b: b.provision_secrets("pay-dev", "pay", ["db"]),
    "store_secret_value": lambda b: b.store_secret_value("db", SecretStr("new-value-42")),
    "delete_secrets_if_present": lambda b: b.delete_secrets_if_present("pay-dev", ["db"]),
}
BINDING_CALLS: dict[str, Callable[[Any], Any]] = {
    "create_secret_bindings": lambda b: b.create_secret_bindings([BINDING]),
    "verify_gitops": lambda b: b.verify_gitops("pay-dev", "appenv-pay-dev"),
    "update_secret_bindings": lambda b: b.update_secret_bindings(
        "db", STORED, [BindingSpec(environment_id="pay-dev", target="k8s:pay-dev/db")]
    ),
    "delete_secret_bindings_if_present": lambda b: b.delete_secret_bindings_if_present([BINDING]),
}
CALLS: dict[str, dict[str, Callable[[Any], Any]]] = {
    "github": GIT_CALLS,
    "harbor": {
        "find_robot": lambda b: b.find_robot("ci", project="idp"),
        "refresh_robot_secret": lambda b: b.refresh_robot_secret(7),
    },
    "vault": STORE_CALLS,
    "secret-endpoints": {**STORE_CALLS, **BINDING_CALLS},
    "execution-workers": {**GIT_CALLS, **STORE_CALLS, **BINDING_CALLS},
    "control-plane": {
        "get_application": lambda b: b.get_application("pay"),
        "get_environment": lambda b: b.get_environment("pay-dev"),
        "get_secret": lambda b: b.get_secret("db"),
        "list_secrets_due": lambda b: b.list_secrets_due(limit=5),
        "transition_application": lambda b: b.transition_application(
            "pay", ApplicationStatus.ONBOARDING
        ),
        "transition_environment": lambda b: b.transition_environment(
            "pay-dev", EnvironmentStatus.PROVISIONING
        ),
        "transition_secret": lambda b: b.transition_secret("db", SecretStatus.ROTATING),
        "acquire_secret_lock": lambda b: b.acquire_secret_lock("db", "run-1"),
        "release_secret_lock": lambda b: b.release_secret_lock("db", "run-1"),
        "record_rotation": lambda b: b.record_rotation("db", flow_run_id="run-1", stored=STORED),
        "record_event": lambda b: b.record_event(
            EventName.APPENV_REQUESTED, aggregate=Aggregate.ENVIRONMENT, aggregate_id="pay-dev"
        ),
        "report_workflow_run": lambda b: b.report_workflow_run(
            "ApplicationOnboarding", flow_run_id="run-1", result="success", duration_seconds=1.0
        ),
    },
}
# Undos whose provider answers a missing resource with 404 (GitHub's DELETE and GET of a
# repository, Vault's metadata read): on "404 empty" they return what "nothing was there"
# returns. Our own services and the secret endpoints answer 200 for that, so a 404 from
# them is a missing route and must raise.
ALREADY_GONE: dict[tuple[str, str], Any] = {
    ("github", "delete_repository_if_present"): False,
    ("vault", "delete_secrets_if_present"): [],
}
# Known gaps, strict: the test fails once they are fixed, so the mark is removed.
KNOWN_GAPS: dict[tuple[str, str], str] = {}
CASES = [
    pytest.param(
        block,
        method,
        id=f"{block}.{method}",
        marks=[pytest.mark.xfail(strict=True, reason=KNOWN_GAPS[(block, method)])]
        if (block, method) in KNOWN_GAPS
        else [],
    )
    for block, calls in CALLS.items()
    for method in calls
]


def failure_of(block: Any, call: Callable[[Any], Any], *, gone: Any = None) -> str | None:
    """None when ``call(block)`` raised a proper domain error (or, with ``gone``, returned
    exactly ``gone``); else what went wrong."""
    try:
        result = call(block)
    except DomainError as exc:
        if exc.code not in CODES:
            return f"unknown code {exc.code!r}"
        # What a traceback would print: the explicit cause, or an unsuppressed context.
        shown = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
        if shown is not None and not isinstance(shown, DomainError):
            return f"chains {type(shown).__module__}.{type(shown).__name__}"
        if TOKEN in str(exc) or TOKEN in repr(exc.details):
            return "names the credential"
        return None
    except Exception as exc:
        return f"{type(exc).__module__}.{type(exc).__name__} escaped"
    finally:
        if hasattr(block, "close"):
            block.close()  # keep-alive connections would hold the server's shutdown
    if gone is not None and result == gone and type(result) is type(gone):
        return None
    return f"did not fail (returned {result!r})"


@pytest.mark.parametrize("block, method", CASES)
def test_a_misbehaving_upstream_yields_a_domain_error(
    upstream: tuple[Upstream, str], block: str, method: str
) -> None:
    app, url = upstream
    call = CALLS[block][method]
    problems: dict[str, str] = {}
    refused = BLOCKS[block](f"http://127.0.0.1:{free_port()}")
    if problem := failure_of(refused, call):
        problems["connection refused"] = problem
    for name, answer in MISBEHAVIOURS.items():
        app.answer = answer
        gone = ALREADY_GONE.get((block, method)) if name == "404 empty" else None
        if problem := failure_of(BLOCKS[block](url), call, gone=gone):
            problems[name] = problem
    assert problems == {}


@pytest.mark.parametrize("block", sorted(BLOCKS))
def test_every_port_method_of_a_block_is_probed(block: str) -> None:
    """A method added to a port (e.g. an undo) cannot be left out of the probes above."""
    instance = BLOCKS[block]("http://127.0.0.1:9")
    roles = (GitProvider, RegistryProvider, SecretStore, SecretBindings, GitOpsVerifier)
    ports = [p for p in roles if isinstance(instance, p)]
    required = {name for port in ports for name in port.__abstractmethods__}
    assert required - set(CALLS[block]) == set()
    assert set(ALREADY_GONE) <= {(b, m) for b, calls in CALLS.items() for m in calls}
