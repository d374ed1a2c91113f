"""``make demo``: the main job on the embedded default, with no credentials.

Starts the whole platform as real processes on loopback (``prefect server`` on SQLite
under a project-local ``PREFECT_HOME``, the sandbox, control-plane-api and a process
worker on ``idp-pool``), deploys the workflows, then acts as a platform engineer would,
only through the control-plane API: registers an application, requests its ``dev``
environment, registers a secret bound to it and asks for its rotation. It waits for each
workflow, prints what now exists in the sandbox, each run's link in the Prefect UI and
the domain events, and keeps serving (UI at http://127.0.0.1:4200) until Ctrl-C.
``--once`` exits after the summary: 0 only if every workflow completed.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from core.settings import PROJECT_ROOT
from idp.stack import Stack, StackConfig, StackError

DEMO_HOME = PROJECT_ROOT / ".idp-demo"
APPLICATION = "payments"
ENVIRONMENT = "dev"
SECRET = "payments-registry"
DONE = {
    "application": {"onboarded": True, "onboarding_failed": False},
    "environment": {"provisioned": True, "provisioning_failed": False},
}


@dataclass
class Outcome:
    workflow: str
    subject: str
    ok: bool
    detail: str
    flow_run_id: str | None
    flow_run_url: str | None


class PlatformEngineer:
    """What a platform engineer does with the control-plane API, and waiting for it."""

    def __init__(self, stack: Stack, timeout: float) -> None:
        self.stack = stack
        self.api = httpx.Client(base_url=f"{stack.control_plane_url}/api/v1", timeout=30)
        self.prefect = httpx.Client(base_url=stack.prefect_api_url, timeout=30)
        self.timeout = timeout

    def command(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.api.post(path, json=body)
        if response.status_code >= 400:
            raise StackError(f"POST {path} answered {response.status_code}: {response.text}")
        data: dict[str, Any] = response.json()
        return data

    def wait_run(self, flow_run_id: str) -> tuple[bool, str]:
        """Wait for a flow run to finish; (completed?, state name)."""
        deadline = time.monotonic() + self.timeout
        state = "unknown"
        while time.monotonic() < deadline:
            run = self.prefect.get(f"/flow_runs/{flow_run_id}").json()
            state_type = (run.get("state") or {}).get("type", "")
            state = (run.get("state") or {}).get("name", state_type)
            if state_type in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}:
                return state_type == "COMPLETED", state
            time.sleep(0.5)
        return False, f"still {state} after {self.timeout:.0f} s"

    def onboard(self) -> Outcome:
        app = self.command(
            "/applications",
            {"name": APPLICATION, "team": "payments-team", "description": "Card payments"},
        )
        ok, state = self.wait_run(app["last_flow_run_id"])
        app = self.api.get(f"/applications/{APPLICATION}").json()
        return Outcome(
            "ApplicationOnboarding",
            APPLICATION,
            ok and app["status"] == "onboarded",
            f"{state}; application {app['status']}",
            app["last_flow_run_id"],
            app["last_flow_run_url"],
        )

    def provision(self) -> Outcome:
        env = self.command(f"/applications/{APPLICATION}/environments", {"name": ENVIRONMENT})
        ok, state = self.wait_run(env["last_flow_run_id"])
        env = self.api.get(f"/environments/{env['id']}").json()
        return Outcome(
            "ApplicationEnvironmentProvisioning",
            env["id"],
            ok and env["status"] == "provisioned",
            f"{state}; environment {env['status']}, repository {env['repository']}",
            env["last_flow_run_id"],
            env["last_flow_run_url"],
        )

    def rotate(self, environment_id: str) -> Outcome:
        self.command(
            "/secrets",
            {
                "id": SECRET,
                "provider": "harbor-robot",
                "provider_ref": "ci",
                "project": self.stack.sandbox_env.get("HARBOR_PROJECT", "idp"),
                "rotatable": True,
                "rotation_interval_seconds": 86_400,
                "bindings": [
                    {
                        "environment_id": environment_id,
                        "target": f"k8s:{environment_id}/registry-credentials",
                    }
                ],
            },
        )
        rotation = self.command(f"/secrets/{SECRET}/rotations")
        ok, state = self.wait_run(rotation["flow_run_id"])
        secret = self.api.get(f"/secrets/{SECRET}").json()
        stored = secret.get("stored") or {}
        return Outcome(
            "SecretRotation",
            SECRET,
            ok and secret["status"] == "active",
            f"{state}; secret {secret['status']}, stored at "
            f"{stored.get('path')} v{stored.get('version')}",
            rotation["flow_run_id"],
            rotation["flow_run_url"],
        )

    def events(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self.api.get("/events", params={"limit": 100}).json()["data"]
        return list(reversed(data))


def sandbox_state(env: dict[str, str]) -> dict[str, Any]:
    """Read every sandbox server's ``/_sandbox/state``."""
    bases = {
        "github": env["GITHUB_API_URL"],
        "harbor": env["HARBOR_URL"],
        "vault": env["VAULT_ADDR"],
        "endpoints": env["APPENV_SECRETS_ENDPOINT"],
    }
    state = {}
    for name, url in bases.items():
        parts = urlsplit(url)
        state[name] = httpx.get(f"{parts.scheme}://{parts.netloc}/_sandbox/state").json()
    return state


def print_summary(
    outcomes: list[Outcome],
    state: dict[str, Any],
    events: list[dict[str, Any]],
    stack: Stack,
    elapsed: float,
) -> None:
    print("\n=== Workflows ===")
    for o in outcomes:
        mark = "ok " if o.ok else "FAILED"
        print(f"  [{mark}] {o.workflow:<36} {o.subject:<20} {o.detail}")
        print(f"         {o.flow_run_url}")
    print("\n=== What now exists in the sandbox ===")
    for full_name, repo in state["github"]["repos"].items():
        protections = repo.get("protections") or {}
        rules = (
            ", ".join(
                f"{branch}: {rule.get('required_pull_request_reviews', {}).get('required_approving_review_count')} approval(s)"  # noqa: E501
                for branch, rule in protections.items()
            )
            or "no protection"
        )
        files = ", ".join(sorted(repo.get("files", {}).get(repo.get("default_branch", "main"), {})))
        print(f"  GitHub repository {full_name:<28} {rules}; files: {files or '-'}")
    for robot in state["harbor"]["robots"]:
        if robot.get("refreshes"):
            print(f"  Harbor robot {robot['name']:<30} secret refreshed {robot['refreshes']}x")
    for mount, keys in state["vault"]["mounts"].items():
        for key, meta in keys.items() if isinstance(keys, dict) else []:
            version = meta.get("current_version") if isinstance(meta, dict) else meta
            print(f"  Vault {mount}/{key:<40} version {version}")
    for binding in state["endpoints"]["bindings"]:
        print(
            f"  Binding {binding.get('secret_id')} -> {binding.get('target')} "
            f"(version {binding.get('version') or 'latest'})"
        )
    print("\n=== Domain events ===")
    for event in events:
        print(
            f"  {event['occurred_at'][11:19]}  {event['name']:<44} {event['aggregate']}/"
            f"{event['aggregate_id']} {event['result']}"
        )
    print(f"\nPrefect UI: {stack.prefect_ui_url}   control plane: {stack.control_plane_url}/docs")
    print(f"From start to summary: {elapsed:.0f} s")


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="idp demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--once", action="store_true", help="exit after the summary")
    parser.add_argument(
        "--home",
        type=Path,
        default=DEMO_HOME,
        help="working directory of the demo (wiped at start)",
    )
    parser.add_argument("--prefect-port", type=int, default=4200)
    parser.add_argument("--control-plane-port", type=int, default=8080)
    parser.add_argument("--timeout", type=float, default=120, help="seconds to wait per workflow")
    parser.add_argument(
        "--via-execution-workers",
        action="store_true",
        help="route repository and secret side effects through execution-workers (port 8081)",
    )
    args = parser.parse_args(argv)
    ports = [args.prefect_port, args.control_plane_port]
    if args.via_execution_workers:
        ports.append(8081)
    for port in ports:
        if not _port_free(port):
            print(f"Port {port} is in use on 127.0.0.1; stop what uses it or pass another port.")
            return 2
    started = time.monotonic()
    shutil.rmtree(args.home, ignore_errors=True)
    config = StackConfig(
        home=args.home,
        prefect_port=args.prefect_port,
        control_plane_port=args.control_plane_port,
        execution_workers_port=8081 if args.via_execution_workers else None,
    )
    print(f"Starting prefect server, sandbox, control plane and worker (logs in {args.home}/logs)")
    try:
        with Stack(config) as stack:
            print(
                f"Platform up in {time.monotonic() - started:.0f} s; "
                f"Prefect UI at {stack.prefect_ui_url}"
            )
            engineer = PlatformEngineer(stack, args.timeout)
            outcomes = [engineer.onboard()]
            print(f"  {outcomes[-1].workflow}: {outcomes[-1].detail}")
            outcomes.append(engineer.provision())
            print(f"  {outcomes[-1].workflow}: {outcomes[-1].detail}")
            outcomes.append(engineer.rotate(outcomes[-1].subject))
            print(f"  {outcomes[-1].workflow}: {outcomes[-1].detail}")
            print_summary(
                outcomes,
                sandbox_state(stack.sandbox_env),
                engineer.events(),
                stack,
                time.monotonic() - started,
            )
            ok = all(o.ok for o in outcomes)
            if not args.once:
                print("\nServing until Ctrl-C ...")
                _wait_for_interrupt()
            return 0 if ok else 1
    except StackError as exc:
        print(f"The platform failed to start or answer: {exc}")
        return 1
    finally:
        print("Stopped every process the demo started.")


def _wait_for_interrupt() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
