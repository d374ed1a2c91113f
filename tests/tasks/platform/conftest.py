"""Fixtures for step-layer tests: the steps' functions against the sandbox, no Prefect server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from blocks.github import GitHubProvider
from blocks.harbor import HarborProvider
from blocks.secret_endpoints import HttpSecretBackend
from blocks.settings import ProviderSettings
from blocks.vault import VaultSecretBackend
from core.settings import reset_settings
from sandbox.run import Sandbox


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as running:
        yield running


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDP_RETRY_DELAY_SCALE", "0.01")
    reset_settings()


@pytest.fixture
def settings(sandbox: Sandbox) -> Iterator[ProviderSettings]:
    yield ProviderSettings(**sandbox.env())  # type: ignore[arg-type]
    for server in sandbox.servers.values():
        server.faults.clear()


@pytest.fixture
def git(settings: ProviderSettings) -> GitHubProvider:
    return GitHubProvider.from_env(settings)


@pytest.fixture
def registry(settings: ProviderSettings) -> HarborProvider:
    return HarborProvider.from_env(settings)


@pytest.fixture
def backend(settings: ProviderSettings) -> VaultSecretBackend:
    return VaultSecretBackend.from_env(settings)


@pytest.fixture
def endpoints(settings: ProviderSettings) -> HttpSecretBackend:
    """The secret system's endpoints: bindings and the GitOps check."""
    return HttpSecretBackend.from_env(settings)
