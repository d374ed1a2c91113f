"""The whole sandbox in one process: GitHub, Harbor, Vault and the secret endpoints.

``idp sandbox`` (and ``python -m sandbox.run``) starts every server, prints one
``NAME=value`` line per platform variable and then ``READY``, and runs until SIGINT or
SIGTERM. Eval the lines into a shell (or an ``.env`` file) and every workflow runs against
local servers with no real credentials.

Credentials are deterministic by default (``sandbox-github-token``,
``sandbox-vault-token``, Harbor robot ``robot$idp-rotator`` / ``SandboxRotator1``) so a
restarted sandbox keeps working with an existing ``.env``; the servers listen on
127.0.0.1 only. Robot secrets rotated during a session are random, as in Harbor.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from sandbox.github import GitHubSandbox
from sandbox.harbor import ROTATOR_USERNAME, HarborSandbox
from sandbox.secret_endpoints import SecretEndpointsSandbox
from sandbox.server import SandboxServer
from sandbox.vault import DEFAULT_TOKEN as DEFAULT_VAULT_TOKEN
from sandbox.vault import VaultSandbox

DEFAULT_GITHUB_TOKEN = "sandbox-github-token"
DEFAULT_GITHUB_ORG = "acme"
HARBOR_PROJECT = "idp"


class Sandbox:
    """Starts and stops the four sandbox servers together; ``.env()`` tells clients where."""

    def __init__(
        self,
        *,
        github_port: int = 0,
        harbor_port: int = 0,
        vault_port: int = 0,
        endpoints_port: int = 0,
        latency_ms: float = 0,
        internal_token: str | None = None,
        github_token: str = DEFAULT_GITHUB_TOKEN,
        github_org: str = DEFAULT_GITHUB_ORG,
        vault_token: str = DEFAULT_VAULT_TOKEN,
        github_rate_limit: int | None = None,
    ) -> None:
        self.latency_ms = latency_ms
        self.internal_token = internal_token
        self.github = GitHubSandbox(token=github_token, org=github_org, port=github_port)
        if github_rate_limit is not None:
            # GitHub's primary limit is 5,000 requests an hour per token (more for GitHub
            # Apps, off on some GHES): a benchmark of thousands of calls raises it.
            self.github.rate_limit.limit = github_rate_limit
            self.github.rate_limit.set(remaining=github_rate_limit)
        self.harbor = HarborSandbox(projects=(HARBOR_PROJECT,), port=harbor_port)
        self.vault = VaultSandbox(token=vault_token, port=vault_port)
        self.endpoints = SecretEndpointsSandbox(endpoints_port, internal_token=internal_token)
        self._started: list[Any] = []

    @property
    def servers(self) -> dict[str, SandboxServer]:
        return {
            "github": self.github.server,
            "harbor": self.harbor.server,
            "vault": self.vault.server,
            "endpoints": self.endpoints.server,
        }

    def start(self) -> Sandbox:
        try:
            for part in (self.github, self.harbor, self.vault, self.endpoints):
                part.start()
                self._started.append(part)
        except BaseException:
            self.stop()
            raise
        if self.latency_ms:
            # Every provider route; the /_sandbox control routes are never delayed.
            for server in self.servers.values():
                server.faults.add(latency_ms=self.latency_ms)
        return self

    def stop(self) -> None:
        while self._started:
            self._started.pop().stop()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def env(self) -> dict[str, str]:
        """The platform variables pointing at this sandbox (includes secrets: local only)."""
        env = {
            "GITHUB_API_URL": self.github.api_url,
            "GITHUB_TOKEN": self.github.token,
            "GITHUB_ORG": self.github.org,
            "HARBOR_URL": self.harbor.url,
            "HARBOR_ROBOT_USERNAME": ROTATOR_USERNAME,
            "HARBOR_ROBOT_PASSWORD": self.harbor.robot_secret(ROTATOR_USERNAME),
            "HARBOR_PROJECT": HARBOR_PROJECT,
            "VAULT_ADDR": self.vault.url,
            "VAULT_TOKEN": self.vault.token,
            **self.endpoints.endpoints(),
        }
        if self.internal_token:
            env["INTERNAL_AUTH_TOKEN"] = self.internal_token
        return env

    def state(self) -> dict[str, Any]:
        return {
            "github": self.github.state(),
            "harbor": self.harbor.state(),
            "vault": self.vault.state(),
            "endpoints": self.endpoints.state(),
        }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="idp sandbox",
        description="Run local GitHub, Harbor, Vault and secret-endpoint servers.",
    )
    for name in ("github", "harbor", "vault", "endpoints"):
        parser.add_argument(
            f"--{name}-port", type=int, default=0, help=f"{name} port (0: any free port)"
        )
    parser.add_argument(
        "--latency-ms", type=float, default=0, help="delay added to every provider call"
    )
    parser.add_argument(
        "--github-rate-limit",
        type=int,
        default=int(os.environ.get("IDP_SANDBOX_GITHUB_RATE_LIMIT") or 5000),
        help="GitHub requests per hour per token (env IDP_SANDBOX_GITHUB_RATE_LIMIT)",
    )
    parser.add_argument(
        "--internal-token",
        default=None,
        help="require this X-Internal-Token on the secret endpoints (also printed)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Start everything, print ``NAME=value`` lines and ``READY``, run until a signal."""
    args = _parser().parse_args(list(argv) if argv is not None else None)
    stop = threading.Event()

    def _on_signal(signum: int, frame: object) -> None:
        stop.set()

    previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    sandbox = Sandbox(
        github_port=args.github_port,
        harbor_port=args.harbor_port,
        vault_port=args.vault_port,
        endpoints_port=args.endpoints_port,
        latency_ms=args.latency_ms,
        internal_token=args.internal_token,
        github_rate_limit=args.github_rate_limit,
    )
    try:
        with sandbox:
            for name, value in sandbox.env().items():
                print(f"{name}={value}")
            print("READY", flush=True)
            while not stop.wait(0.5):
                pass
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
