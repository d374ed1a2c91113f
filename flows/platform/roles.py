"""Which block plays each provider role, loaded at the top of every flow.

The block document of each role comes from ``RoleSettings`` (``IDP_GIT_BLOCK``,
``IDP_REGISTRY_BLOCK``, ``IDP_SECRET_BACKEND_BLOCK``, ``IDP_SECRET_BINDINGS_BLOCK``,
``IDP_GITOPS_BLOCK``, ``IDP_CONTROL_PLANE_BLOCK``, each ``"<block-type-slug>/<name>"``) and
is loaded generically with ``Block.aload``, so a deployment can route side effects
elsewhere (for example through execution-workers) by pointing a variable at another
block document that implements the same interface (``blocks/ports.py``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from prefect.blocks.core import Block

# Importing the block types registers them, so a generic load can build them.
import blocks.catalog
import blocks.platform.catalog  # noqa: F401
from blocks.platform.control_plane import ControlPlane
from blocks.ports import GitOpsVerifier, GitProvider, RegistryProvider, SecretBindings, SecretStore
from core.errors import InvalidInput
from core.settings import EnvSettings


class RoleSettings(EnvSettings):
    """Which block document each role loads (``"<block-type-slug>/<name>"``). Routing side
    effects through execution-workers is a matter of pointing these at its block."""

    IDP_GIT_BLOCK: str = "idp-github/default"
    IDP_REGISTRY_BLOCK: str = "idp-harbor/default"
    IDP_SECRET_BACKEND_BLOCK: str = "idp-vault-secret-backend/default"
    IDP_SECRET_BINDINGS_BLOCK: str = "idp-http-secret-backend/default"
    IDP_GITOPS_BLOCK: str = "idp-http-secret-backend/default"
    IDP_CONTROL_PLANE_BLOCK: str = "idp-control-plane/default"


# role -> (setting naming its block document, interface it must implement)
ROLES: dict[str, tuple[str, type[Any]]] = {
    "control_plane": ("IDP_CONTROL_PLANE_BLOCK", ControlPlane),
    "git": ("IDP_GIT_BLOCK", GitProvider),
    "registry": ("IDP_REGISTRY_BLOCK", RegistryProvider),
    "secrets": ("IDP_SECRET_BACKEND_BLOCK", SecretStore),
    "bindings": ("IDP_SECRET_BINDINGS_BLOCK", SecretBindings),
    "gitops": ("IDP_GITOPS_BLOCK", GitOpsVerifier),
}


class Roles:
    """The blocks one run uses, by role; asking for a role the workflow did not load is a
    bug (``KeyError`` naming it)."""

    def __init__(self, blocks: dict[str, Any]) -> None:
        self._blocks = blocks

    def _get(self, role: str) -> Any:
        try:
            return self._blocks[role]
        except KeyError:
            raise KeyError(f"this workflow did not load the {role!r} role") from None

    @property
    def control_plane(self) -> ControlPlane:
        return self._get("control_plane")

    @property
    def git(self) -> GitProvider:
        return self._get("git")

    @property
    def registry(self) -> RegistryProvider:
        return self._get("registry")

    @property
    def secrets(self) -> SecretStore:
        return self._get("secrets")

    @property
    def bindings(self) -> SecretBindings:
        return self._get("bindings")

    @property
    def gitops(self) -> GitOpsVerifier:
        return self._get("gitops")

    def resources(self) -> dict[str, Any]:
        """What a compensation passes to undo steps, by parameter name (= role name)."""
        return dict(self._blocks)


def _checked(role: str, slug: str, block: Any) -> Any:
    variable, interface = ROLES[role]
    if not isinstance(block, interface):
        raise InvalidInput(
            f"{variable}={slug} is a {type(block).__name__}, not a {interface.__name__}",
            details={"variable": variable, "block": slug},
        )
    return block


async def load_role(role: str) -> Any:
    slug = getattr(RoleSettings.current(), ROLES[role][0])
    return _checked(role, slug, await Block.aload(slug))


async def load_roles(*roles: str) -> Roles:
    """The control plane and the given roles, loaded concurrently; roles played by the
    same block document (bindings and GitOps by the secret system's endpoints) share one
    load and one block, so one HTTP client."""
    settings = RoleSettings.current()
    names = ["control_plane", *dict.fromkeys(r for r in roles if r != "control_plane")]
    slugs = {name: getattr(settings, ROLES[name][0]) for name in names}
    distinct = list(dict.fromkeys(slugs.values()))
    loaded = dict(zip(distinct, await asyncio.gather(*map(Block.aload, distinct)), strict=True))
    return Roles({name: _checked(name, slugs[name], loaded[slugs[name]]) for name in names})
