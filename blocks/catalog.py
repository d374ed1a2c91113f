"""The provider block types every family may use (``prefect block register -m
blocks.catalog`` registers them; ``deployments/bootstrap.py`` does it in-process)."""

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
