"""Block types register and block documents save from the environment, idempotently."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.blocks.core import Block

from blocks.catalog import PROVIDER_BLOCK_TYPES
from blocks.platform.catalog import PLATFORM_BLOCK_TYPES
from deployments.bootstrap import ensure_work_pool, register_block_types, save_block_documents
from sandbox.run import Sandbox

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as running:
        yield running


def test_block_types_register_without_clashing_with_prefect_github(
    prefect_harness: None,
) -> None:
    slugs = register_block_types()
    assert {
        "idp-github",
        "idp-harbor",
        "idp-http-secret-backend",
        "idp-vault-secret-backend",
        "idp-control-plane",
    } <= set(slugs)
    # prefect-github's collection owns these; ours must never take them.
    assert not {"github-credentials", "github-repository"} & set(slugs)


def test_documents_saved_from_the_environment_load_and_work(
    prefect_harness: None, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in sandbox.env().items():
        monkeypatch.setenv(name, value)
    register_block_types()
    first = save_block_documents("bootstrap-test")
    second = save_block_documents("bootstrap-test")  # idempotent: overwrite, no error
    assert first == second
    assert first["idp-github"] == "saved idp-github/bootstrap-test"
    github = Block.load("idp-github/bootstrap-test")
    assert github.ensure_repository("bootstrap-check").full_name == "acme/bootstrap-check"
    vault = Block.load("idp-vault-secret-backend/bootstrap-test")
    assert vault.addr == sandbox.env()["VAULT_ADDR"]
    endpoints = Block.load("idp-http-secret-backend/bootstrap-test")
    assert (
        endpoints.secret_bindings_update_endpoint
        == sandbox.env()["SECRET_BINDINGS_UPDATE_ENDPOINT"]
    )


def test_unconfigured_providers_are_skipped_with_the_missing_variable(
    prefect_harness: None,
) -> None:
    outcome = save_block_documents("bootstrap-empty")
    assert outcome["idp-github"].startswith("skipped")
    assert "GITHUB_TOKEN" in outcome["idp-github"] or "GITHUB_ORG" in outcome["idp-github"]


@pytest.mark.parametrize(
    ("module", "types"),
    [("blocks.catalog", PROVIDER_BLOCK_TYPES), ("blocks.platform.catalog", PLATFORM_BLOCK_TYPES)],
)
def test_prefect_cli_registers_each_blocks_module(
    prefect_harness: None, module: str, types: tuple[type, ...]
) -> None:
    from prefect.settings import PREFECT_API_URL

    done = subprocess.run(
        [sys.executable, "-m", "prefect", "block", "register", "-m", module],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Successfully registered {len(types)} blocks" in done.stdout


def test_work_pool_is_created_once(prefect_harness: None) -> None:
    from prefect.client.orchestration import get_client

    assert ensure_work_pool("idp-pool-test") is True
    assert ensure_work_pool("idp-pool-test") is False
    with get_client(sync_client=True) as client:
        assert client.read_work_pool("idp-pool-test").type == "process"


def test_the_local_result_storage_block_is_created_once(prefect_harness: None) -> None:
    from prefect.filesystems import LocalFileSystem
    from prefect.settings import PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK, temporary_settings

    from deployments.bootstrap import ensure_result_storage

    slug = "local-file-system/idp-results-test"
    with temporary_settings({PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK: slug}):
        assert ensure_result_storage() == f"{slug} created"
        assert ensure_result_storage() == f"{slug} (already there)"
    block = LocalFileSystem.load("idp-results-test")
    assert str(block.basepath).endswith("storage")


def test_a_missing_shared_result_storage_block_is_reported_not_invented(
    prefect_harness: None,
) -> None:
    from prefect.settings import PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK, temporary_settings

    from deployments.bootstrap import ensure_result_storage

    with temporary_settings({PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK: "s3-bucket/nowhere"}):
        assert "does not exist" in ensure_result_storage()
