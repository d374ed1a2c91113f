"""``idp walkthrough``: every provider block driven once against the sandbox.

It starts the sandbox (GitHub, Harbor, Vault and the secret endpoints on loopback) in
this process and walks each provider block through its operations, printing what it
did, the way a workflow would drive them: a quick check that the blocks and the sandbox
agree, without Prefect. Every call goes over real HTTP through unmodified PyGithub,
httpx and hvac.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pydantic import SecretStr

from blocks.github import GitHubProvider
from blocks.harbor import HarborProvider
from blocks.models import BindingRecord, BindingSpec
from blocks.platform.domain import appenv_repository_name
from blocks.secret_endpoints import HttpSecretBackend
from blocks.settings import HarborSettings
from blocks.vault import VaultSecretBackend
from core.errors import DomainError
from core.settings import reset_settings
from sandbox.run import Sandbox

APPLICATION = "payments"
ENVIRONMENT = "payments-dev"


def _say(step: str, detail: str) -> None:
    print(f"  {step:<34} {detail}", flush=True)


@contextmanager
def _sandbox_env() -> Iterator[Sandbox]:
    with Sandbox() as sandbox:
        previous = {name: os.environ.get(name) for name in sandbox.env()}
        os.environ.update(sandbox.env())
        reset_settings()
        try:
            yield sandbox
        finally:
            for name, value in previous.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            reset_settings()


def walk_github(github: GitHubProvider) -> None:
    print(f"GitHub ({github.base_url}, org {github.org})")
    repo_name = appenv_repository_name(ENVIRONMENT)
    repo = github.ensure_repository(repo_name, description="payments dev environment")
    _say("ensure_repository", f"{repo.full_name} created={repo.created} {repo.html_url}")
    again = github.ensure_repository(repo_name, description="payments dev environment")
    _say("ensure_repository (again)", f"{again.full_name} created={again.created} (adopted)")
    rule = github.ensure_branch_protection(repo_name, required_approving_review_count=1)
    _say(
        "ensure_branch_protection",
        f"{rule.branch}: {rule.required_approving_review_count} approving review(s), "
        f"changed={rule.changed}",
    )
    rule = github.ensure_branch_protection(repo_name, required_approving_review_count=1)
    _say("ensure_branch_protection (again)", f"changed={rule.changed}")
    files = {
        "README.md": f"# {repo_name}\n",
        "catalog-info.yaml": f"apiVersion: backstage.io/v1alpha1\nkind: Component\n"
        f"metadata:\n  name: {repo_name}\n",
    }
    created = github.ensure_files(repo_name, files, message="Seed initial configuration")
    _say("ensure_files", f"created {created or 'nothing'}")
    created = github.ensure_files(repo_name, files, message="Seed initial configuration")
    _say("ensure_files (again)", f"created {created or 'nothing'}")


def walk_harbor(harbor: HarborProvider, project: str | None) -> SecretStr:
    print(f"Harbor ({harbor.url}, as {harbor.username})")
    robot = harbor.find_robot("ci", project=project)
    _say("find_robot", f"{robot.name} id={robot.id} level={robot.level}")
    secret = harbor.refresh_robot_secret(robot.id)
    _say("refresh_robot_secret", f"new secret issued ({secret})")
    second = harbor.refresh_robot_secret(robot.id)
    _say("refresh_robot_secret (again)", f"another new secret, differs={second != secret}")
    return second


def walk_secrets(
    backend: VaultSecretBackend, endpoints: HttpSecretBackend, secret: SecretStr
) -> None:
    print(f"Secret store (Vault {backend.addr}, mount {backend.mount}) and the secret system")
    provisioned = backend.provision_secrets(ENVIRONMENT, APPLICATION, ["app-config"])
    for item in provisioned:
        _say("provision_secrets", f"{item.path} v{item.version}")
    stored = backend.store_secret_value("payments-registry", secret)
    _say("store_secret_value", f"{stored.path} v{stored.version} (value never printed)")
    bindings = endpoints.create_secret_bindings(
        [
            BindingRecord(
                secret_id="payments-registry",
                environment_id=ENVIRONMENT,
                target=f"k8s:{ENVIRONMENT}/registry",
            )
        ]
    )
    _say("create_secret_bindings", ", ".join(b.target for b in bindings))
    status = endpoints.verify_gitops(ENVIRONMENT, appenv_repository_name(ENVIRONMENT))
    _say("verify_gitops", f"reconciled={status.reconciled} revision={status.revision}")
    updated = endpoints.update_secret_bindings(
        "payments-registry",
        stored,
        [BindingSpec(environment_id=ENVIRONMENT, target=f"k8s:{ENVIRONMENT}/registry")],
    )
    _say("update_secret_bindings", ", ".join(f"{b.target}@v{b.version}" for b in updated))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="idp walkthrough", description=__doc__)
    parser.parse_args(argv)
    started = time.monotonic()
    print("Starting the sandbox (GitHub, Harbor, Vault, secret endpoints) on loopback...")
    with _sandbox_env() as sandbox:
        try:
            walk_github(GitHubProvider.from_env())
            secret = walk_harbor(HarborProvider.from_env(), HarborSettings.current().HARBOR_PROJECT)
            walk_secrets(VaultSecretBackend.from_env(), HttpSecretBackend.from_env(), secret)
        except DomainError as exc:
            print(f"FAILED: {exc}")
            return 1
        state = sandbox.state()
    print(f"Sandbox now holds: {_summary(state)}")
    print(f"Done in {time.monotonic() - started:.1f} s.")
    return 0


def _summary(state: dict[str, Any]) -> str:
    repos = state["github"]["repos"]
    robots = [r for r in state["harbor"]["robots"] if r["refreshes"]]
    vault_keys = sum(len(keys) for keys in state["vault"]["mounts"].values())
    bindings = state["endpoints"]["bindings"]
    return (
        f"{len(repos)} repositories ({', '.join(repos)}), "
        f"{len(robots)} rotated robot(s), {vault_keys} Vault key(s), {len(bindings)} binding(s)"
    )
