"""Prefect blocks: provider configuration plus ``get_client()``.

The provider blocks every family may use (GitHub, Harbor, Vault, the secret system's HTTP
endpoints) live here; a family's own blocks live in ``blocks/<family>/``. Vendor errors
are translated into ``core.errors`` exactly once, in the block; no PyGithub, httpx or
hvac exception escapes a block.
"""

from __future__ import annotations

from prefect.blocks.core import Block

from blocks.github import GitHubProvider
from blocks.harbor import HarborProvider
from blocks.secret_endpoints import HttpSecretBackend
from blocks.vault import VaultSecretBackend

PROVIDER_BLOCK_TYPES: tuple[type[Block], ...] = (
    GitHubProvider,
    HarborProvider,
    HttpSecretBackend,
    VaultSecretBackend,
)

__all__ = [
    "PROVIDER_BLOCK_TYPES",
    "GitHubProvider",
    "HarborProvider",
    "HttpSecretBackend",
    "VaultSecretBackend",
]
