"""Repository and secret-backend steps, called as plain functions against the sandbox."""

from __future__ import annotations

import asyncio

import pytest

from blocks.github import GitHubProvider
from blocks.secret_endpoints import HttpSecretBackend
from blocks.vault import VaultSecretBackend
from core.errors import DomainError
from sandbox.run import DEFAULT_GITHUB_ORG, Sandbox
from tasks.platform.repositories import (
    apply_branch_protection,
    materialize_repository,
    seed_initial_configuration,
)
from tasks.platform.secrets import (
    create_secret_bindings,
    provision_secrets,
    verify_gitops_reconciliation,
)
from tests.flows.platform.support import unique


def test_materialize_repository_creates_once_then_adopts(
    git: GitHubProvider, sandbox: Sandbox
) -> None:
    name = unique("repo")

    first = asyncio.run(materialize_repository(git, name, "a test"))
    second = asyncio.run(materialize_repository(git, name, "a test"))

    assert (first.created, second.created) == (True, False)
    assert first.full_name == second.full_name == f"{DEFAULT_GITHUB_ORG}/{name}"
    repos = sandbox.github.state()["repos"]
    assert [r for r in repos if r.endswith(f"/{name}")] == [first.full_name]


def test_apply_branch_protection_requires_a_review_and_is_idempotent(
    git: GitHubProvider, sandbox: Sandbox
) -> None:
    repo = asyncio.run(materialize_repository(git, unique("repo"))).name

    first = asyncio.run(apply_branch_protection(git, repo, 1))
    second = asyncio.run(apply_branch_protection(git, repo, 1))

    assert (first.changed, second.changed) == (True, False)
    assert second.required_approving_review_count >= 1
    state = sandbox.github.state()["repos"][f"{DEFAULT_GITHUB_ORG}/{repo}"]
    assert state["branches"][first.branch]["protected"] is True


def test_seed_initial_configuration_creates_only_what_is_missing(git: GitHubProvider) -> None:
    repo = asyncio.run(materialize_repository(git, unique("repo"))).name
    files = {"catalog-info.yaml": "kind: Component\n", "docs/index.md": "# docs\n"}

    first = asyncio.run(seed_initial_configuration(git, repo, files, "seed"))
    second = asyncio.run(seed_initial_configuration(git, repo, files, "seed"))

    assert (sorted(first), second) == (sorted(files), [])


def test_provision_secrets_is_create_only(backend: VaultSecretBackend) -> None:
    env_id = unique("env")

    first = asyncio.run(provision_secrets(backend, env_id, "app", ["db", "api"]))
    second = asyncio.run(provision_secrets(backend, env_id, "app", ["db", "api"]))

    assert [s.path for s in first] == [
        f"secret/idp/appenv/{env_id}/db",
        f"secret/idp/appenv/{env_id}/api",
    ]
    assert second == first  # same versions: nothing rewritten


def test_bindings_target_the_environment_and_are_upserted(
    endpoints: HttpSecretBackend, sandbox: Sandbox
) -> None:
    env_id = unique("env")

    asyncio.run(create_secret_bindings(endpoints, env_id, ["db", "api"]))
    records = asyncio.run(create_secret_bindings(endpoints, env_id, ["db", "api"]))

    assert {(r.secret_id, r.target) for r in records} == {
        ("db", f"k8s:{env_id}/db"),
        ("api", f"k8s:{env_id}/api"),
    }
    bound = [b for b in sandbox.endpoints.state()["bindings"] if b["environment_id"] == env_id]
    assert len(bound) == 2


@pytest.mark.parametrize("reconciled", [True, False])
def test_verify_gitops_passes_only_when_reconciled(
    reconciled: bool, endpoints: HttpSecretBackend, sandbox: Sandbox
) -> None:
    env_id = unique("env")
    sandbox.endpoints.force_gitops(env_id, reconciled, "" if reconciled else "syncing")
    try:
        if reconciled:
            status = asyncio.run(verify_gitops_reconciliation(endpoints, env_id, "appenv-x"))
            assert status.reconciled is True
        else:
            with pytest.raises(DomainError) as raised:
                asyncio.run(verify_gitops_reconciliation(endpoints, env_id, "appenv-x"))
            # Not converged yet is transient: the task's retries are its polling.
            assert (raised.value.code, raised.value.retryable) == ("upstream_timeout", True)
    finally:
        sandbox.endpoints.force_gitops(env_id, None)
