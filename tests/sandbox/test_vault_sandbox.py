"""The Vault sandbox serves KV v2 to unmodified hvac 2.4 and to plain HTTP clients."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import hvac
import hvac.exceptions
import pytest

from sandbox.vault import VaultSandbox

TOKEN = "sandbox-vault-token"


@pytest.fixture(scope="module")
def vault() -> Iterator[VaultSandbox]:
    with VaultSandbox(mounts=("secret", "kv")) as sandbox:
        yield sandbox


@pytest.fixture(autouse=True)
def _no_faults(vault: VaultSandbox) -> Iterator[None]:
    yield
    vault.server.faults.clear()
    vault.unseal()


@pytest.fixture
def kv(vault: VaultSandbox) -> hvac.api.secrets_engines.KvV2:
    return hvac.Client(url=vault.url, token=TOKEN).secrets.kv.v2


@pytest.fixture
def http(vault: VaultSandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=vault.url, headers={"X-Vault-Token": TOKEN}) as client:
        yield client


def test_write_then_read_round_trip_with_versions(kv: hvac.api.secrets_engines.KvV2) -> None:
    first = kv.create_or_update_secret(path="rt/a", secret={"value": "one"})
    assert first["data"]["version"] == 1
    second = kv.create_or_update_secret(path="rt/a", secret={"value": "two"})
    assert second["data"]["version"] == 2
    latest = kv.read_secret_version(path="rt/a", raise_on_deleted_version=True)
    assert latest["data"]["data"] == {"value": "two"}
    assert latest["data"]["metadata"]["version"] == 2
    old = kv.read_secret_version(path="rt/a", version=1, raise_on_deleted_version=True)
    assert old["data"]["data"] == {"value": "one"}


def test_cas_zero_is_create_only(kv: hvac.api.secrets_engines.KvV2) -> None:
    kv.create_or_update_secret(path="cas/a", secret={"value": "first"}, cas=0)
    with pytest.raises(hvac.exceptions.InvalidRequest) as caught:
        kv.create_or_update_secret(path="cas/a", secret={"value": "second"}, cas=0)
    assert caught.value.errors == ["check-and-set parameter did not match the current version"]
    kv.create_or_update_secret(path="cas/a", secret={"value": "second"}, cas=1)
    data = kv.read_secret_version(path="cas/a", raise_on_deleted_version=True)["data"]
    assert data["data"] == {"value": "second"}


def test_list_with_the_list_verb_and_with_get(
    kv: hvac.api.secrets_engines.KvV2, http: httpx.Client
) -> None:
    kv.create_or_update_secret(path="tree/a", secret={"v": 1})
    kv.create_or_update_secret(path="tree/sub/b", secret={"v": 1})
    assert kv.list_secrets(path="tree")["data"]["keys"] == ["a", "sub/"]
    listed = http.get("/v1/secret/metadata/tree/", params={"list": "true"})
    assert listed.json()["data"]["keys"] == ["a", "sub/"]
    assert http.request("LIST", "/v1/secret/metadata/empty").status_code == 404


def test_metadata_and_deletes(kv: hvac.api.secrets_engines.KvV2, http: httpx.Client) -> None:
    kv.create_or_update_secret(path="del/a", secret={"v": 1})
    kv.create_or_update_secret(path="del/a", secret={"v": 2})
    metadata = kv.read_secret_metadata(path="del/a")["data"]
    assert metadata["current_version"] == 2 and set(metadata["versions"]) == {"1", "2"}
    assert kv.delete_latest_version_of_secret(path="del/a").status_code == 204
    deleted = http.get("/v1/secret/data/del/a")
    assert deleted.status_code == 404
    assert deleted.json()["data"]["metadata"]["deletion_time"]
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret_version(path="del/a", raise_on_deleted_version=True)
    assert kv.delete_metadata_and_all_versions(path="del/a").status_code == 204
    assert http.get("/v1/secret/metadata/del/a").status_code == 404


def test_deleting_metadata_removes_every_version_and_is_204_when_absent(
    vault: VaultSandbox, kv: hvac.api.secrets_engines.KvV2, http: httpx.Client
) -> None:
    kv.create_or_update_secret(path="undo/a", secret={"v": 1})
    kv.create_or_update_secret(path="undo/a", secret={"v": 2})
    first = http.delete("/v1/secret/metadata/undo/a")
    again = http.delete("/v1/secret/metadata/undo/a")  # Vault does not say it was absent

    assert (first.status_code, first.content, again.status_code) == (204, b"", 204)
    assert http.get("/v1/secret/data/undo/a?version=1").json() == {"errors": []}
    assert "undo/a" not in vault.state()["mounts"]["secret"]


def test_unknown_key_is_a_404_with_an_empty_error_list(http: httpx.Client) -> None:
    response = http.get("/v1/secret/data/never/written")
    assert response.status_code == 404 and response.json() == {"errors": []}


def test_envelope_shape(http: httpx.Client) -> None:
    written = http.post("/v1/kv/data/envelope", json={"data": {"v": 1}}).json()
    assert set(written) >= {"request_id", "lease_id", "renewable", "lease_duration", "data"}
    assert written["data"]["version"] == 1 and written["mount_type"] == "kv"


def test_missing_data_is_rejected(http: httpx.Client) -> None:
    response = http.post("/v1/secret/data/nodata", json={"options": {}})
    assert response.status_code == 400 and response.json() == {"errors": ["no data provided"]}


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_token_is_required(vault: VaultSandbox, token: str | None) -> None:
    headers = {"X-Vault-Token": token} if token else {}
    response = httpx.get(vault.url + "/v1/secret/data/rt/a", headers=headers)
    assert response.status_code == 403
    assert "permission denied" in response.json()["errors"][0]
    with pytest.raises(hvac.exceptions.Forbidden):
        hvac.Client(url=vault.url, token=token or "x").secrets.kv.v2.read_secret_version(
            path="rt/a", raise_on_deleted_version=True
        )


def test_health_needs_no_token_and_reports_seal(vault: VaultSandbox) -> None:
    assert httpx.get(vault.url + "/v1/sys/health").status_code == 200
    vault.seal()
    assert httpx.get(vault.url + "/v1/sys/health").status_code == 503
    with pytest.raises(hvac.exceptions.VaultDown):
        hvac.Client(url=vault.url, token=TOKEN).secrets.kv.v2.read_secret_metadata(path="x")


def test_unknown_mount_is_404(http: httpx.Client) -> None:
    response = http.get("/v1/nomount/data/x")
    assert response.status_code == 404 and "no handler for route" in response.json()["errors"][0]


def test_old_versions_are_pruned_to_max_versions(
    kv: hvac.api.secrets_engines.KvV2, http: httpx.Client
) -> None:
    http.post("/v1/secret/metadata/pruned", json={"max_versions": 2})
    for i in range(4):
        kv.create_or_update_secret(path="pruned", secret={"v": i})
    metadata = kv.read_secret_metadata(path="pruned")["data"]
    assert metadata["current_version"] == 4 and sorted(metadata["versions"]) == ["3", "4"]


def test_state_has_versions_but_no_values(
    vault: VaultSandbox, kv: hvac.api.secrets_engines.KvV2
) -> None:
    kv.create_or_update_secret(path="state/a", secret={"value": "very-secret-value"})
    state = httpx.get(vault.url + "/_sandbox/state").json()
    assert state["mounts"]["secret"]["state/a"]["current_version"] == 1
    assert "very-secret-value" not in str(state)
