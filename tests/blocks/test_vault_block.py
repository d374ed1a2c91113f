"""VaultSecretBackend against the Vault and secret-endpoint sandboxes (hvac unmodified)."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import hvac
import pytest
from pydantic import SecretStr

from blocks.models import StoredSecret
from blocks.vault import VaultSecretBackend
from core.errors import DomainError
from sandbox.vault import VaultSandbox

TOKEN = "sandbox-vault-token"


@pytest.fixture(scope="module")
def vault() -> Iterator[VaultSandbox]:
    with VaultSandbox() as sandbox:
        yield sandbox


@pytest.fixture(autouse=True)
def _no_faults(vault: VaultSandbox) -> Iterator[None]:
    yield
    vault.server.faults.clear()
    vault.unseal()


def _block(vault: VaultSandbox, **kw: object) -> VaultSecretBackend:
    fields: dict[str, object] = {"addr": vault.url, "token": TOKEN, **kw}
    return VaultSecretBackend(**fields)


@pytest.fixture
def block(vault: VaultSandbox) -> VaultSecretBackend:
    return _block(vault)


def _raw(vault: VaultSandbox) -> hvac.api.secrets_engines.KvV2:
    return hvac.Client(url=vault.url, token=TOKEN).secrets.kv.v2


def test_provision_is_create_only_and_keeps_values(
    block: VaultSecretBackend, vault: VaultSandbox
) -> None:
    first = block.provision_secrets("env-1", "app-1", ["db", "api"])
    assert first == [
        StoredSecret(backend="vault", path="secret/idp/appenv/env-1/db", version=1),
        StoredSecret(backend="vault", path="secret/idp/appenv/env-1/api", version=1),
    ]
    read = _raw(vault).read_secret_version(
        path="idp/appenv/env-1/db", raise_on_deleted_version=True
    )
    value = read["data"]["data"]["value"]
    assert len(value) >= 32
    assert block.provision_secrets("env-1", "app-1", ["db", "api"]) == first
    again = _raw(vault).read_secret_version(
        path="idp/appenv/env-1/db", raise_on_deleted_version=True
    )
    assert again["data"]["data"]["value"] == value


def test_store_and_read_round_trip(block: VaultSecretBackend) -> None:
    first = block.store_secret_value("harbor-ci", SecretStr("one"))
    assert first == StoredSecret(backend="vault", path="secret/idp/secrets/harbor-ci", version=1)
    assert block.store_secret_value("harbor-ci", SecretStr("one")) == first  # retry: no new version
    assert block.store_secret_value("harbor-ci", SecretStr("two")).version == 2
    assert block.read_secret_value("harbor-ci").get_secret_value() == "two"


def test_store_after_the_latest_version_was_deleted(
    block: VaultSecretBackend, vault: VaultSandbox
) -> None:
    block.store_secret_value("deleted", SecretStr("one"))
    _raw(vault).delete_latest_version_of_secret(path="idp/secrets/deleted")
    assert block.store_secret_value("deleted", SecretStr("two")).version == 2


def test_reading_a_secret_never_stored_is_not_found(block: VaultSecretBackend) -> None:
    with pytest.raises(DomainError) as caught:
        block.read_secret_value("never-stored")
    assert caught.value.code == "not_found"


def test_provisioned_secrets_are_deleted_with_every_version_once(
    block: VaultSecretBackend, vault: VaultSandbox
) -> None:
    block.provision_secrets("env-del", "app", ["db", "api"])
    _raw(vault).create_or_update_secret(path="idp/appenv/env-del/db", secret={"value": "v2"})
    first = block.delete_secrets_if_present("env-del", ["db", "never", "db"])
    second = block.delete_secrets_if_present("env-del", ["db", "never"])

    assert (first, second) == (["db"], [])
    keys = vault.state()["mounts"]["secret"]
    assert "idp/appenv/env-del/db" not in keys and "idp/appenv/env-del/api" in keys
    with pytest.raises(hvac.exceptions.InvalidPath):
        _raw(vault).read_secret_version(path="idp/appenv/env-del/db", version=1)
    assert block.provision_secrets("env-del", "app", ["db"])[0].version == 1  # no trace left


def test_deleting_reads_first_because_vault_answers_204_either_way(
    block: VaultSecretBackend, vault: VaultSandbox
) -> None:
    block.provision_secrets("env-reads", "app", ["db"])
    client = block.get_client()
    seen: list[tuple[str, str, int]] = []
    client.adapter.session.hooks["response"].append(
        lambda r, *a, **k: seen.append((r.request.method, r.request.path_url, r.status_code))
    )
    block.delete_secrets_if_present("env-reads", ["db", "never"])

    metadata = "/v1/secret/metadata/idp/appenv/env-reads"
    assert seen == [
        ("GET", f"{metadata}/db", 200),
        ("DELETE", f"{metadata}/db", 204),
        ("GET", f"{metadata}/never", 404),
    ]


def test_from_env(monkeypatch: pytest.MonkeyPatch, vault: VaultSandbox) -> None:
    monkeypatch.setenv("VAULT_ADDR", vault.url)
    monkeypatch.setenv("VAULT_TOKEN", TOKEN)
    block = VaultSecretBackend.from_env()  # a secret store needs nothing else
    assert block.store_secret_value("from-env", SecretStr("v")).version == 1


@pytest.mark.parametrize("missing", ["VAULT_ADDR", "VAULT_TOKEN"])
def test_from_env_names_the_missing_variable(monkeypatch: pytest.MonkeyPatch, missing: str) -> None:
    for var in ("VAULT_ADDR", "VAULT_TOKEN"):
        if var != missing:
            monkeypatch.setenv(var, "http://127.0.0.1:9")
    with pytest.raises(DomainError) as caught:
        VaultSecretBackend.from_env()
    assert caught.value.code == "invalid_input" and missing in caught.value.message


def test_token_does_not_show(block: VaultSecretBackend) -> None:
    assert TOKEN not in repr(block)


# -- error contract -----------------------------------------------------------------------
OPERATIONS: dict[str, Callable[[VaultSecretBackend], object]] = {
    "provision": lambda b: b.provision_secrets("env-err", "app", ["db"]),
    "store": lambda b: b.store_secret_value("s-err", SecretStr("v")),
    "read": lambda b: b.read_secret_value("s-err"),
    "delete": lambda b: b.delete_secrets_if_present("env-err", ["db"]),
}


@pytest.mark.parametrize(
    "status, code, retryable",
    [
        (400, "invalid_input", False),
        (401, "unauthorized", False),
        (403, "forbidden", False),
        (409, "conflict", False),
        (412, "upstream_unavailable", True),  # Vault Enterprise: not consistent yet, retry
        (429, "rate_limited", True),
        (500, "upstream_unavailable", True),
        (501, "upstream_unavailable", True),
        (502, "upstream_unavailable", True),
        (503, "upstream_unavailable", True),
    ],
)
@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_error_contract(
    block: VaultSecretBackend,
    vault: VaultSandbox,
    operation: str,
    status: int,
    code: str,
    retryable: bool,
) -> None:
    vault.server.faults.add(path="^/v1/secret/", statuses=[status], retry_after=4)
    with pytest.raises(DomainError) as caught:
        OPERATIONS[operation](block)
    error = caught.value
    assert (error.code, error.retryable, error.upstream_status) == (code, retryable, status)
    assert error.__cause__ is None and error.__suppress_context__
    if status == 429:
        assert error.retry_after == 4


def test_sealed_vault_is_retryable(block: VaultSecretBackend, vault: VaultSandbox) -> None:
    vault.seal()
    with pytest.raises(DomainError) as caught:
        block.store_secret_value("sealed", SecretStr("v"))
    assert (caught.value.code, caught.value.retryable) == ("upstream_unavailable", True)


def test_wrong_token_is_forbidden(vault: VaultSandbox) -> None:
    with pytest.raises(DomainError) as caught:
        _block(vault, token="wrong").read_secret_value("x")
    assert caught.value.code == "forbidden"


def test_timeout(vault: VaultSandbox) -> None:
    vault.server.faults.add(path="^/v1/secret/", latency_ms=600)
    with pytest.raises(DomainError) as caught:
        _block(vault, timeout_seconds=0.2).read_secret_value("slow")
    assert (caught.value.code, caught.value.retryable) == ("upstream_timeout", True)


def test_refused_connection_on_every_operation() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    block = VaultSecretBackend(addr=closed, token="t")
    calls: list[Callable[[], object]] = [lambda op=op: op(block) for op in OPERATIONS.values()]
    for call in calls:
        with pytest.raises(DomainError) as caught:
            call()
        assert (caught.value.code, caught.value.retryable) == ("upstream_unavailable", True)


def test_an_address_without_scheme_is_a_configuration_error() -> None:
    block = VaultSecretBackend(addr="vault.example.com", token="t")
    with pytest.raises(DomainError) as caught:
        block.read_secret_value("x")
    assert (caught.value.code, caught.value.retryable) == ("invalid_input", False)


@pytest.mark.parametrize("secret_id", ["a/b", "..", "../../sys", ""])
def test_ids_cannot_escape_the_prefix(block: VaultSecretBackend, secret_id: str) -> None:
    with pytest.raises(DomainError) as caught:
        block.store_secret_value(secret_id, SecretStr("v"))
    assert caught.value.code == "invalid_input"
    with pytest.raises(DomainError):
        block.provision_secrets("env", "app", [secret_id])
    with pytest.raises(DomainError):
        block.delete_secrets_if_present("env", [secret_id])
