"""Helpers for execution-workers tests: settings over the sandbox, a live server, reads."""

from __future__ import annotations

import secrets
import socket
from typing import Any, cast

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from sandbox.run import Sandbox
from services.platform.execution_workers.settings import ExecutionWorkersSettings

TOKEN = "ew-internal-t0ken"
VAULT_VARS = ("VAULT_ADDR", "VAULT_TOKEN")


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def workers_settings(
    sandbox: Sandbox, control_plane_url: str = "", *, vault: bool = False, **overrides: Any
) -> ExecutionWorkersSettings:
    """Settings of a service over the sandbox: HTTP secret endpoints unless ``vault``."""
    env: dict[str, Any] = dict(sandbox.env())
    if not vault:
        for name in VAULT_VARS:
            env.pop(name)
    env["CONTROL_PLANE_URL"] = control_plane_url
    env.update(overrides)
    return ExecutionWorkersSettings(**env)


def closed_port_url() -> str:
    """A loopback URL nothing listens on (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def error_code(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    return str(body["error"]["code"])


def environment_events(control_plane_url: str, environment_id: str) -> list[dict[str, Any]]:
    """The control plane's events of one environment, oldest first."""
    with httpx.Client(base_url=control_plane_url, timeout=10) as client:
        response = client.get(
            "/api/v1/events",
            params={"aggregate": "environment", "aggregate_id": environment_id, "limit": 500},
        )
    response.raise_for_status()
    return list(reversed(response.json()["data"]))


def registry_of(client: TestClient) -> CollectorRegistry:
    """The metrics registry of the app behind ``client``."""
    registry: CollectorRegistry = cast(FastAPI, client.app).state.execution_workers.metrics.registry
    return registry


def sample(registry: Any, name: str, labels: dict[str, str]) -> float:
    value = registry.get_sample_value(name, labels)
    return float(value or 0.0)
