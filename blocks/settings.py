"""The shared provider blocks' settings: what each block's ``from_env`` reads.

One class per provider, each with only its variables (the field names are the seed's
environment variable names); ``ProviderSettings`` is all of them, for code that builds
every provider block (execution-workers, tests over the sandbox).
"""

from __future__ import annotations

from pydantic import Field, SecretStr

from core.internal_auth import InternalAuthSettings
from core.settings import EnvSettings

PUBLIC_GITHUB_API_URL = "https://api.github.com"


class ProviderCallSettings(EnvSettings):
    """What every provider block shares."""

    PROVIDER_TIMEOUT_SECONDS: float = Field(10.0, gt=0, description="Timeout of one provider call")


class GitHubSettings(ProviderCallSettings):
    """``GitHubProvider.from_env`` (seed 002)."""

    GITHUB_TOKEN: SecretStr | None = Field(None, description="GitHub token for repos/protection")
    GITHUB_API_URL: str = Field(
        PUBLIC_GITHUB_API_URL, description="API root; GitHub Enterprise is https://host/api/v3"
    )
    GITHUB_ORG: str | None = Field(None, description="Organization that owns appenv repos")


class HarborSettings(ProviderCallSettings):
    """``HarborProvider.from_env`` (seed 002), and the project callers rotate robots of."""

    HARBOR_URL: str | None = Field(None, description="Harbor base URL (without /api/v2.0)")
    HARBOR_ROBOT_USERNAME: str | None = Field(None, description="Account used to rotate robots")
    HARBOR_ROBOT_PASSWORD: SecretStr | None = None
    HARBOR_PROJECT: str | None = Field(None, description="Default project of project robots")


class VaultSettings(ProviderCallSettings):
    """``VaultSecretBackend.from_env`` (Vault KV v2)."""

    VAULT_ADDR: str | None = None
    VAULT_TOKEN: SecretStr | None = None
    VAULT_KV_MOUNT: str = "secret"


class SecretEndpointSettings(ProviderCallSettings, InternalAuthSettings):
    """``HttpSecretBackend.from_env``: the secret system's endpoints (seed 002), called
    with the internal token (seed 000)."""

    APPENV_SECRETS_ENDPOINT: str | None = None
    APPENV_SECRET_BINDINGS_ENDPOINT: str | None = None
    APPENV_GITOPS_VERIFY_ENDPOINT: str | None = None
    SECRET_BINDINGS_UPDATE_ENDPOINT: str | None = None


class ProviderSettings(GitHubSettings, HarborSettings, VaultSettings, SecretEndpointSettings):
    """Every provider block's settings at once."""
