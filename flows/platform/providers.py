"""Which block each provider role uses, loaded at the top of every flow.

The block document of each role comes from settings (``IDP_GIT_BLOCK``,
``IDP_REGISTRY_BLOCK``, ``IDP_SECRET_BACKEND_BLOCK``, ``IDP_CONTROL_PLANE_BLOCK``, each
``"<block-type-slug>/<name>"``) and is loaded generically with ``Block.aload``, so a
deployment can route side effects elsewhere (for example through execution-workers) by
pointing a variable at another block document that implements the same interface.
"""

from __future__ import annotations

from typing import Any

from prefect.blocks.core import Block

# Importing the block modules registers their types, so a generic load can build them.
import blocks.github
import blocks.harbor
import blocks.secret_endpoints
import blocks.vault  # noqa: F401
from blocks.platform.control_plane import ControlPlane
from blocks.ports import GitProvider, RegistryProvider, SecretBackend
from core.errors import InvalidInput
from core.settings import get_settings


async def _load(slug: str, role: type[Any], variable: str) -> Any:
    block = await Block.aload(slug)
    if not isinstance(block, role):
        raise InvalidInput(
            f"{variable}={slug} is a {type(block).__name__}, not a {role.__name__}",
            details={"variable": variable, "block": slug},
        )
    return block


async def load_git_provider() -> GitProvider:
    return await _load(get_settings().IDP_GIT_BLOCK, GitProvider, "IDP_GIT_BLOCK")


async def load_registry() -> RegistryProvider:
    return await _load(get_settings().IDP_REGISTRY_BLOCK, RegistryProvider, "IDP_REGISTRY_BLOCK")


async def load_secret_backend() -> SecretBackend:
    slug = get_settings().IDP_SECRET_BACKEND_BLOCK
    return await _load(slug, SecretBackend, "IDP_SECRET_BACKEND_BLOCK")


async def load_control_plane() -> ControlPlane:
    slug = get_settings().IDP_CONTROL_PLANE_BLOCK
    return await _load(slug, ControlPlane, "IDP_CONTROL_PLANE_BLOCK")
