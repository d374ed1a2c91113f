"""The Vault sandbox and the Vault block against Vault 1.15's own OpenAPI subset.

hvac's requests are recorded (a ``requests`` response hook on the block's own client)
and each one is matched to a contracted operation; request bodies validate against the
request schema, and the ``data`` member of every JSON envelope validates against the
operation's response schema, also in a strict mode that rejects unnamed fields.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from openapi_schema_validator import OAS30Validator
from pydantic import SecretStr
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from blocks.secret_endpoints import HttpSecretBackend
from blocks.vault import VaultSecretBackend
from sandbox.vault import VaultSandbox
from tests.contracts.openapi_check import contracts_dir

TOKEN = "sandbox-vault-token"
ENVELOPE = {
    "request_id",
    "lease_id",
    "renewable",
    "lease_duration",
    "data",
    "wrap_info",
    "warnings",
    "auth",
}
# Vault sends null for an unset custom_metadata although its generated spec types it as a
# plain object (vault-kv2-notes.md §3 shows the null); accept exactly that.
NULLABLE = ("custom_metadata",)


@cache
def spec() -> dict[str, Any]:
    return json.loads((contracts_dir() / "vault-kv2-openapi-subset.json").read_text())  # type: ignore[no-any-return]


@cache
def registry(strict: bool) -> Registry:
    document = copy.deepcopy(spec())
    for schema in document["components"]["schemas"].values():
        for name in NULLABLE:
            if name in schema.get("properties", {}):
                schema["properties"][name]["nullable"] = True
    if strict:
        for schema in document["components"]["schemas"].values():
            if schema.get("type") == "object" and "properties" in schema:
                schema["additionalProperties"] = False
    return Registry().with_resource("urn:vault", Resource(document, DRAFT4))


def validate(schema: dict[str, Any], instance: Any) -> None:
    rooted = json.loads(json.dumps(schema).replace('"#/', '"urn:vault#/'))
    for strict in (False, True):
        OAS30Validator(rooted, registry=registry(strict)).validate(instance)


def find(method: str, path: str, query: str) -> tuple[str, str, dict[str, Any]]:
    """(template, method, operation) for a request under ``/v1``, LIST mapped to GET list."""
    assert path.startswith("/v1/"), path
    local = path[3:]
    if method == "LIST" or "list=true" in query:
        method, local = "GET", local.rstrip("/") + "/"
    for template, item in spec()["paths"].items():
        if template.endswith("/") != local.endswith("/"):
            continue  # the list operation is the only template with a trailing slash
        regex = re.sub(r"\{path\}", "(?P<path>.+?)", template)
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", regex)
        if re.fullmatch(regex, local) and method.lower() in item:
            return template, method.lower(), item[method.lower()]
    raise AssertionError(f"{method} {path} is not a contracted operation")


def check(response: requests.Response) -> tuple[str, str]:
    request = response.request
    url = urlsplit(request.url or "")
    template, method, op = find(request.method or "", url.path, url.query)
    if request.body:
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        validate(schema, json.loads(request.body))
    status = response.status_code
    if status >= 400:
        assert set(response.json()) >= {"errors"} or "data" in response.json()
        return template, method
    assert str(status) in op["responses"], f"{template}: undocumented {status}"
    if status == 204:
        assert response.content == b""
        return template, method
    content = op["responses"][str(status)].get("content")
    if content is not None:
        envelope = response.json()
        assert set(envelope) >= ENVELOPE
        validate(content["application/json"]["schema"], envelope["data"])
    return template, method


@pytest.fixture(scope="module")
def vault() -> Iterator[VaultSandbox]:
    with VaultSandbox() as sandbox:
        yield sandbox


def test_block_and_hvac_traffic_validates(vault: VaultSandbox) -> None:
    unused = "http://127.0.0.1:9"
    endpoints = HttpSecretBackend(
        appenv_secret_bindings_endpoint=unused,
        appenv_gitops_verify_endpoint=unused,
        secret_bindings_update_endpoint=unused,
    )
    block = VaultSecretBackend(addr=vault.url, token=TOKEN, endpoints=endpoints)
    client = block.get_client()
    seen: list[requests.Response] = []
    client.adapter.session.hooks["response"].append(lambda r, *a, **k: seen.append(r))

    block.provision_secrets("env-c", "app", ["db"])
    block.provision_secrets("env-c", "app", ["db"])  # cas mismatch, then metadata
    block.store_secret_value("contract", SecretStr("one"))
    block.store_secret_value("contract", SecretStr("two"))
    block.read_secret_value("contract")
    assert block.delete_secrets_if_present("env-c", ["db", "never"]) == ["db"]
    block_traffic = len(seen)
    kv = client.secrets.kv.v2
    kv.list_secrets(path="idp", mount_point="secret")
    kv.read_secret_metadata(path="idp/secrets/contract", mount_point="secret")
    kv.read_configuration(mount_point="secret")
    kv.delete_latest_version_of_secret(path="idp/secrets/contract", mount_point="secret")
    kv.delete_metadata_and_all_versions(path="idp/secrets/contract", mount_point="secret")
    client.sys.read_health_status(method="GET")

    covered = {check(response) for response in seen}
    # The block's own undo, not just hvac's: metadata read, then the delete of every version.
    assert ("/{kv_v2_mount_path}/metadata/{path}", "delete") in {
        check(response) for response in seen[:block_traffic]
    }
    assert {
        ("/{kv_v2_mount_path}/data/{path}", "get"),
        ("/{kv_v2_mount_path}/data/{path}", "post"),
        ("/{kv_v2_mount_path}/data/{path}", "delete"),
        ("/{kv_v2_mount_path}/metadata/{path}", "get"),
        ("/{kv_v2_mount_path}/metadata/{path}", "delete"),
        ("/{kv_v2_mount_path}/metadata/{path}/", "get"),
        ("/{kv_v2_mount_path}/config", "get"),
        ("/sys/health", "get"),
    } <= covered


def test_get_list_form_validates_too(vault: VaultSandbox) -> None:
    headers = {"X-Vault-Token": TOKEN}
    requests.post(f"{vault.url}/v1/secret/data/listed/a", json={"data": {"v": 1}}, headers=headers)
    response = requests.get(
        f"{vault.url}/v1/secret/metadata/listed/", params={"list": "true"}, headers=headers
    )
    assert check(response) == ("/{kv_v2_mount_path}/metadata/{path}/", "get")
    assert response.json()["data"]["keys"] == ["a"]
