"""Which provider block serves each role, built once from the seed's variables.

The service owns no provider code: it builds the same blocks the workflows load, with
their ``from_env`` constructors. A role is *not configured* when none of its variables is
set (Harbor is optional, seed 002) and *misconfigured* when some are set but the block
refuses them; either way the endpoints that need it answer ``412 precondition_failed``
naming the problem, and ``/ready`` reports it.

Secret values (``secrets``): Vault when ``VAULT_ADDR`` is set, otherwise the seed's
``APPENV_SECRETS_ENDPOINT``. Bindings and the GitOps check (``bindings``): the seed's
other endpoints (``HttpSecretBackend``), exactly as the seed describes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from blocks.github import GitHubProvider
from blocks.harbor import HarborProvider
from blocks.platform.control_plane import ControlPlane
from blocks.ports import GitProvider, RegistryProvider, SecretStore
from blocks.secret_endpoints import HttpSecretBackend
from blocks.settings import ProviderSettings
from blocks.vault import VaultSecretBackend
from core.errors import DomainError, PreconditionFailed
from services.platform.execution_workers.settings import ExecutionWorkersSettings

logger = logging.getLogger(__name__)

# Events are reported on the request path: a control plane that hangs must not hold a
# side effect's answer for long.
EVENT_TIMEOUT_SECONDS = 3.0
GIT, REGISTRY, SECRETS, BINDINGS = "git", "registry", "secrets", "bindings"
# The secret system's endpoints that Vault does not replace: bindings, GitOps, update.
BINDING_VARS = (
    "APPENV_SECRET_BINDINGS_ENDPOINT",
    "APPENV_GITOPS_VERIFY_ENDPOINT",
    "SECRET_BINDINGS_UPDATE_ENDPOINT",
)
_VARIABLES = {
    GIT: "GITHUB_TOKEN, GITHUB_ORG (GITHUB_API_URL optional)",
    REGISTRY: "HARBOR_URL, HARBOR_ROBOT_USERNAME, HARBOR_ROBOT_PASSWORD",
    SECRETS: "VAULT_ADDR, VAULT_TOKEN (or APPENV_SECRETS_ENDPOINT)",
    BINDINGS: ", ".join(BINDING_VARS),
}
P = TypeVar("P")


def provider_name(block: object) -> str:
    """The ``target``/``provider`` label of a block: the vendor it speaks to."""
    names: dict[type, str] = {
        GitHubProvider: "github",
        HarborProvider: "harbor",
        VaultSecretBackend: "vault",
        HttpSecretBackend: "secret-endpoints",
        ControlPlane: "control-plane",
    }
    return names.get(type(block), type(block).__name__.lower())


@dataclass
class Providers:
    """The blocks behind the endpoints; ``None`` when a role is not configured."""

    git: GitProvider | None = None
    registry: RegistryProvider | None = None
    secrets: SecretStore | None = None
    # Bindings and GitOps: one block plays both (the secret system's endpoints).
    bindings: HttpSecretBackend | None = None
    control_plane: ControlPlane | None = None
    problems: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: ExecutionWorkersSettings) -> Providers:
        """Build every configured block (no network: blocks connect on first use)."""
        problems: dict[str, str] = {}
        store: Callable[[ProviderSettings], SecretStore] = (
            VaultSecretBackend.from_env
            if settings.VAULT_ADDR
            else lambda s: HttpSecretBackend.from_env(s, require=["APPENV_SECRETS_ENDPOINT"])
        )
        control_plane = None
        if settings.CONTROL_PLANE_URL:
            control_plane = ControlPlane(
                url=settings.CONTROL_PLANE_URL,
                internal_token=settings.INTERNAL_AUTH_TOKEN,
                timeout_seconds=EVENT_TIMEOUT_SECONDS,
            )
        return cls(
            git=_build(GIT, _git_configured(settings), GitHubProvider.from_env, settings, problems),
            registry=_build(
                REGISTRY, _harbor_configured(settings), HarborProvider.from_env, settings, problems
            ),
            secrets=_build(SECRETS, _secrets_configured(settings), store, settings, problems),
            bindings=_build(
                BINDINGS,
                _bindings_configured(settings),
                lambda s: HttpSecretBackend.from_env(s, require=BINDING_VARS),
                settings,
                problems,
            ),
            control_plane=control_plane,
            problems=problems,
        )

    def require(self, role: str) -> Any:
        """The block of ``role``, or ``PreconditionFailed`` saying what to configure."""
        block = self._roles()[role]
        if block is not None:
            return block
        problem = self.problems.get(role)
        message = f"{role} provider is " + (
            f"misconfigured: {problem}" if problem else f"not configured: set {_VARIABLES[role]}"
        )
        raise PreconditionFailed(message, details={"provider": role})

    def describe(self) -> dict[str, str]:
        """Each role's state for ``/ready``: its provider name, or why there is none."""
        out = {}
        for role, block in self._roles().items():
            if block is not None:
                out[role] = provider_name(block)
            elif role in self.problems:
                out[role] = "misconfigured"
            else:
                out[role] = "not configured"
        return out

    def _roles(self) -> dict[str, Any]:
        return {
            GIT: self.git,
            REGISTRY: self.registry,
            SECRETS: self.secrets,
            BINDINGS: self.bindings,
        }

    def close(self) -> None:
        """Close the blocks' pooled HTTP clients (those that keep one)."""
        for block in self._roles().values():
            close = getattr(block, "close", None)
            if callable(close):
                close()


def _build(
    role: str,
    configured: bool,
    build: Callable[[ProviderSettings], P],
    settings: ProviderSettings,
    problems: dict[str, str],
) -> P | None:
    if not configured:
        return None
    try:
        return build(settings)
    except DomainError as exc:
        # Some variables are set but the block refuses them: say which in ``problems``
        # and keep serving the other roles.
        problems[role] = exc.message
        logger.warning("%s provider misconfigured: %s", role, exc.message)
        return None


def _git_configured(settings: ProviderSettings) -> bool:
    return bool(settings.GITHUB_TOKEN or settings.GITHUB_ORG)


def _harbor_configured(settings: ProviderSettings) -> bool:
    password = settings.HARBOR_ROBOT_PASSWORD
    return bool(settings.HARBOR_URL or settings.HARBOR_ROBOT_USERNAME or password)


def _secrets_configured(settings: ProviderSettings) -> bool:
    return bool(settings.VAULT_ADDR or settings.VAULT_TOKEN or settings.APPENV_SECRETS_ENDPOINT)


def _bindings_configured(settings: ProviderSettings) -> bool:
    return any(getattr(settings, var) for var in BINDING_VARS)
