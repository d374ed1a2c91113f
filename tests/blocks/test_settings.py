"""blocks.settings: the provider blocks read the seed's variable names."""

from __future__ import annotations

import pytest

from blocks.settings import (
    PUBLIC_GITHUB_API_URL,
    GitHubSettings,
    HarborSettings,
    ProviderSettings,
    SecretEndpointSettings,
    VaultSettings,
)
from core.settings import reset_settings


def test_seed_variable_names_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_API_URL", "https://ghe.example/api/v3")
    monkeypatch.setenv("GITHUB_TOKEN", "t0ken")
    monkeypatch.setenv("HARBOR_ROBOT_PASSWORD", "pw")
    monkeypatch.setenv("SECRET_BINDINGS_UPDATE_ENDPOINT", "http://x/secrets/bindings/update")
    monkeypatch.setenv("PROVIDER_TIMEOUT_SECONDS", "2.5")
    github = GitHubSettings.current()
    assert github.GITHUB_API_URL == "https://ghe.example/api/v3"
    assert github.PROVIDER_TIMEOUT_SECONDS == 2.5
    endpoints = SecretEndpointSettings.current()
    assert endpoints.SECRET_BINDINGS_UPDATE_ENDPOINT == "http://x/secrets/bindings/update"
    everything = ProviderSettings()
    # Secrets never show in a repr (logs, tracebacks).
    for settings in (github, HarborSettings.current(), everything):
        assert "t0ken" not in repr(settings) and "pw" not in repr(settings)


def test_public_github_and_the_default_mount() -> None:
    assert GitHubSettings.current().GITHUB_API_URL == PUBLIC_GITHUB_API_URL
    assert VaultSettings.current().VAULT_KV_MOUNT == "secret"


def test_provider_settings_hold_every_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    """What builds every provider block (execution-workers, tests) passes one object."""
    for cls in (GitHubSettings, HarborSettings, VaultSettings, SecretEndpointSettings):
        assert issubclass(ProviderSettings, cls)
    monkeypatch.setenv("INTERNAL_AUTH_TOKEN", "internal")
    reset_settings()
    token = ProviderSettings.current().INTERNAL_AUTH_TOKEN
    assert token is not None and token.get_secret_value() == "internal"
