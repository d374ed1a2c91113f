"""The all-in-one sandbox runner: in process, and as ``python -m sandbox.run``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from core.internal_auth import INTERNAL_TOKEN_HEADER
from sandbox.run import Sandbox

PROJECT_ROOT = Path(__file__).resolve().parents[2]
VARIABLES = {
    "GITHUB_API_URL",
    "GITHUB_TOKEN",
    "GITHUB_ORG",
    "HARBOR_URL",
    "HARBOR_ROBOT_USERNAME",
    "HARBOR_ROBOT_PASSWORD",
    "HARBOR_PROJECT",
    "VAULT_ADDR",
    "VAULT_TOKEN",
    "APPENV_SECRETS_ENDPOINT",
    "APPENV_SECRET_BINDINGS_ENDPOINT",
    "APPENV_GITOPS_VERIFY_ENDPOINT",
    "SECRET_BINDINGS_UPDATE_ENDPOINT",
}


def test_env_points_at_working_servers() -> None:
    with Sandbox() as sandbox:
        env = sandbox.env()
        assert set(env) == VARIABLES
        harbor_auth = (env["HARBOR_ROBOT_USERNAME"], env["HARBOR_ROBOT_PASSWORD"])
        robots = httpx.get(env["HARBOR_URL"] + "/api/v2.0/robots", auth=harbor_auth)
        assert robots.status_code == 200
        project = httpx.get(
            f"{env['HARBOR_URL']}/api/v2.0/projects/{env['HARBOR_PROJECT']}", auth=harbor_auth
        )
        assert project.status_code == 200
        health = httpx.get(env["VAULT_ADDR"] + "/v1/sys/health")
        assert health.status_code == 200
        org = httpx.get(
            f"{env['GITHUB_API_URL']}/orgs/{env['GITHUB_ORG']}",
            headers={"Authorization": f"token {env['GITHUB_TOKEN']}"},
        )
        assert org.status_code == 200
        check = {"environment_id": "e", "repository": "r"}
        assert httpx.post(env["APPENV_GITOPS_VERIFY_ENDPOINT"], json=check).status_code == 200
        assert set(sandbox.state()) == {"github", "harbor", "vault", "endpoints"}


def test_latency_and_internal_token_apply_to_provider_routes() -> None:
    with Sandbox(latency_ms=150, internal_token="tok") as sandbox:
        env = sandbox.env()
        assert env["INTERNAL_AUTH_TOKEN"] == "tok"
        started = time.perf_counter()
        httpx.get(env["VAULT_ADDR"] + "/v1/sys/health")
        assert time.perf_counter() - started >= 0.15
        check = {"environment_id": "e", "repository": "r"}
        url = env["APPENV_GITOPS_VERIFY_ENDPOINT"]
        assert httpx.post(url, json=check).status_code == 401
        assert (
            httpx.post(url, json=check, headers={INTERNAL_TOKEN_HEADER: "tok"}).status_code == 200
        )


def test_the_github_rate_limit_can_be_raised_for_benchmarks() -> None:
    with Sandbox(github_rate_limit=1_000_000) as sandbox:
        env = sandbox.env()
        org = httpx.get(
            f"{env['GITHUB_API_URL']}/orgs/{env['GITHUB_ORG']}",
            headers={"Authorization": f"token {env['GITHUB_TOKEN']}"},
        )
        assert org.headers["x-ratelimit-limit"] == "1000000"
        assert int(org.headers["x-ratelimit-remaining"]) == 999_999


def test_main_prints_variables_then_ready_and_exits_0_on_sigterm() -> None:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox.run", "--latency-ms", "1"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.strip())
            if line.strip() == "READY":
                break
        assert lines and lines[-1] == "READY", lines
        printed = dict(line.split("=", 1) for line in lines[:-1])
        assert set(printed) == VARIABLES
        assert httpx.get(printed["VAULT_ADDR"] + "/v1/sys/health").status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
