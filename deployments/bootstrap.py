"""Create the work pool, register the block types and save the ``default`` block documents.

Idempotent: run it as often as you like (the pool is created once, documents are
overwritten with the current environment). Run it with a Prefect API configured
(``PREFECT_API_URL``), after pointing the environment at the sandbox (``idp sandbox``
prints the variables) or at real GitHub/Harbor/Vault.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

from prefect.blocks.core import Block
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

from blocks.catalog import PROVIDER_BLOCK_TYPES
from blocks.github import GitHubProvider
from blocks.harbor import HarborProvider
from blocks.platform.catalog import PLATFORM_BLOCK_TYPES
from blocks.platform.control_plane import ControlPlane
from blocks.platform.execution_workers import ExecutionWorkers
from blocks.platform.workflows import WORK_POOL
from blocks.secret_endpoints import HttpSecretBackend
from blocks.vault import VaultSecretBackend
from core.errors import DomainError
from deployments.recovery import install_recovery

DEFAULT_DOCUMENT = "default"
# Every block type of the product: the shared providers', then each family's.
BLOCK_TYPES = (*PROVIDER_BLOCK_TYPES, *PLATFORM_BLOCK_TYPES)
# Flow-run heartbeat period the platform's workers use (PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
# set by idp/stack.py); a run silent for three periods is marked Crashed and rescheduled.
HEARTBEAT_SECONDS = 30


def ensure_work_pool(name: str = WORK_POOL) -> bool:
    """Create the process work pool the deployments use; False when it already exists."""
    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
            return False
        except ObjectNotFound:
            pass
        try:
            client.create_work_pool(WorkPoolCreate(name=name, type="process"))
        except ObjectAlreadyExists:  # created by a concurrent bootstrap
            return False
        return True


def register_block_types() -> list[str]:
    """``prefect block register -m blocks.catalog`` (and each family's catalog), in-process."""
    for block_type in BLOCK_TYPES:
        block_type.register_type_and_schema()
    return [block_type.get_block_type_slug() for block_type in BLOCK_TYPES]


def save_block_documents(name: str = DEFAULT_DOCUMENT) -> dict[str, str]:
    """Save every block that the environment configures; report what was saved or skipped."""
    saved: dict[str, str] = {}
    builders: dict[str, Callable[[], Block]] = {
        "idp-github": GitHubProvider.from_env,
        "idp-harbor": HarborProvider.from_env,
        "idp-http-secret-backend": HttpSecretBackend.from_env,
        "idp-vault-secret-backend": VaultSecretBackend.from_env,
        "idp-control-plane": ControlPlane.from_env,
        "idp-execution-workers": ExecutionWorkers.from_env,
    }
    for slug, build in builders.items():
        try:
            block = build()
        except DomainError as exc:  # a provider not configured here: say so, keep going
            saved[slug] = f"skipped ({exc.message})"
            continue
        block.save(name, overwrite=True)
        saved[slug] = f"saved {slug}/{name}"
    return saved


LOCAL_STORAGE_TYPE = "local-file-system"


def ensure_result_storage() -> str:
    """The block ``PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK`` names, when it is a local file
    system: created under ``$PREFECT_HOME/storage`` if missing (the local platform's; a
    deployment across machines names a shared storage block it created itself).

    With a storage block, Prefect neither reads the server's default result storage per
    run nor resolves the storage path of every task result (~1.5 ms of system calls
    each, which batches of hundreds of items pay for on the event loop; measured).
    """
    from prefect.filesystems import LocalFileSystem
    from prefect.settings import PREFECT_HOME, PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK

    slug = PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK.value()
    if not slug:
        return "not set: Prefect's default result storage"
    kind, _, name = slug.partition("/")
    try:
        Block.load(slug)
        return f"{slug} (already there)"
    except ValueError:
        if kind != LOCAL_STORAGE_TYPE or not name:
            return f"{slug} does not exist: save it (shared storage every worker can reach)"
    LocalFileSystem(basepath=str(PREFECT_HOME.value() / "storage")).save(name)
    return f"{slug} created"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="idp bootstrap", description=__doc__)
    parser.add_argument("--name", default=DEFAULT_DOCUMENT, help="block document name")
    args = parser.parse_args(argv)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    created = ensure_work_pool()
    print(f"work pool {WORK_POOL}: {'created' if created else 'already there'}")
    with get_client(sync_client=True) as client:
        install_recovery(
            client, heartbeat_seconds=HEARTBEAT_SECONDS, grace_seconds=2 * HEARTBEAT_SECONDS
        )
    print("automations: crashed-run detection (heartbeats) and rescheduling installed")
    print("registered block types:", ", ".join(register_block_types()))
    print("result storage:", ensure_result_storage())
    for slug, outcome in save_block_documents(args.name).items():
        print(f"  {slug:<26} {outcome}")
    return 0
