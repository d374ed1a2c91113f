"""Prefect blocks: provider configuration plus ``get_client()``.

Vendor errors are translated into ``core.errors`` exactly once, here; no PyGithub, httpx
or hvac exception escapes this package. ``prefect block register -m blocks`` registers
every block type imported below.
"""

from __future__ import annotations

from prefect.blocks.core import Block

from blocks.control_plane import ControlPlane
from blocks.execution_workers import ExecutionWorkers
from blocks.github import GitHubProvider
from blocks.harbor import HarborProvider
from blocks.secret_endpoints import HttpSecretBackend
from blocks.vault import VaultSecretBackend

BLOCK_TYPES: tuple[type[Block], ...] = (
    GitHubProvider,
    HarborProvider,
    HttpSecretBackend,
    VaultSecretBackend,
    ControlPlane,
    ExecutionWorkers,
)

__all__ = [
    "BLOCK_TYPES",
    "ControlPlane",
    "ExecutionWorkers",
    "GitHubProvider",
    "HarborProvider",
    "HttpSecretBackend",
    "VaultSecretBackend",
]
