"""``make demo``: the main job on the embedded default, with no credentials.

Starts the whole platform as real processes on loopback (a PostgreSQL of its own,
``prefect server`` under a project-local ``PREFECT_HOME``, the sandbox, control-plane-api
and a process worker on ``idp-pool``), deploys the workflows, then acts as a platform
engineer would, only through the control-plane API: registers an application, requests
its ``dev`` environment, registers a secret bound to it and asks for its rotation. It
waits for each workflow, prints what now exists in the sandbox, each run's link in the
Prefect UI and the domain events, and keeps serving (UI at http://127.0.0.1:4200) until
Ctrl-C.
``--once`` exits after the summary: 0 only if every workflow completed.

Ctrl-C or SIGTERM stops every process it started, at any point; a failure is one line
naming what failed and the log that explains it (exit 1), never a traceback.
"""

from __future__ import annotations

import argparse
import io
import shutil
import signal
import socket
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from core.settings import PROJECT_ROOT
from idp.http import RetryingClient
from idp.stack import Stack, StackConfig, StackError, become_subreaper, reap_leftovers

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
        self.api = RetryingClient(base_url=f"{stack.control_plane_url}/api/v1", timeout=30)
        self.prefect = RetryingClient(base_url=stack.prefect_api_url, timeout=30)
        self.timeout = timeout
        self.control_plane_log = stack.logs / "control-plane.log"

    def command(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """A command, sent once with an Idempotency-Key (so a retry never starts a
        second workflow)."""
        headers = {"Idempotency-Key": f"demo-{uuid.uuid4()}"}
        response = self.call("POST", path, body, headers)
        data: dict[str, Any] = response.json()
        return data

    def read(self, path: str) -> dict[str, Any]:
        data: dict[str, Any] = self.call("GET", path).json()
        return data

    def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        try:
            response = self.api.request(method, path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise StackError(
                f"the control plane did not answer {method} {path} ({type(exc).__name__})",
                log=self.control_plane_log,
            ) from None
        if response.status_code >= 400:
            code = _error_code(response)
            raise StackError(
                f"the control plane answered {method} {path} with {response.status_code} {code}",
                log=self.control_plane_log,
            )
        return response

    def wait_run(self, flow_run_id: str) -> tuple[bool, str]:
        """Wait for a flow run to finish; (completed?, state name)."""
        deadline = time.monotonic() + self.timeout
        state = "unknown"
        while time.monotonic() < deadline:
            try:
                response = self.prefect.get(f"/flow_runs/{flow_run_id}")
                response.raise_for_status()
            except httpx.HTTPError as exc:
                raise StackError(
                    f"Prefect's API did not answer for flow run {flow_run_id} "
                    f"({type(exc).__name__})",
                    log=self.stack.logs / "prefect-server.log",
                ) from None
            run = response.json()
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
        app = self.read(f"/applications/{APPLICATION}")
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
        env = self.read(f"/environments/{env['id']}")
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
        secret = self.read(f"/secrets/{SECRET}")
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
        data: list[dict[str, Any]] = self.read("/events?limit=100")["data"]
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
    with RetryingClient(timeout=30) as client:
        for name, url in bases.items():
            parts = urlsplit(url)
            response = client.get(f"{parts.scheme}://{parts.netloc}/_sandbox/state")
            response.raise_for_status()
            state[name] = response.json()
    return state


def _error_code(response: httpx.Response) -> str:
    """The control plane's stable error code of an answer (never its whole body)."""
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return ""


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
    parser.add_argument(
        "--database",
        choices=["embedded-postgres", "sqlite"],
        default="embedded-postgres",
        help="Prefect's and the control plane's database: a PostgreSQL the demo starts "
        "(default) or SQLite files (Prefect's own default; see docs/embedded-default.md)",
    )
    args = parser.parse_args(argv)
    # Progress lines reach a pipe (tee, a CI log) as they happen.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)
    # SIGTERM stops the demo as Ctrl-C does: every process it started is stopped.
    signal.signal(signal.SIGTERM, _interrupt)
    become_subreaper()
    logs = args.home / "logs"
    try:
        return _run(args)
    except KeyboardInterrupt:
        print("\nInterrupted.")
        return 130
    except StackError as exc:
        where = exc.log if exc.log is not None else logs
        print(f"The demo failed: {exc.summary}. See {where}")
        return 1
    except Exception as exc:  # a bug of ours: one line, the traceback in the log
        logs.mkdir(parents=True, exist_ok=True)
        with (logs / "demo.log").open("a") as log:
            traceback.print_exc(file=log)
        print(f"The demo failed: {type(exc).__name__}: {exc}. See {logs / 'demo.log'}")
        return 1
    finally:
        print("Stopped every process the demo started.")


def _run(args: argparse.Namespace) -> int:
    ports = [args.prefect_port, args.control_plane_port]
    if args.via_execution_workers:
        ports.append(8081)
    for port in ports:
        if not _port_free(port):
            print(f"Port {port} is in use on 127.0.0.1; stop what uses it or pass another port.")
            return 2
    started = time.monotonic()
    leftovers = reap_leftovers(args.home)
    if leftovers:
        print(f"Stopped what an earlier demo left running: {', '.join(leftovers)}")
    shutil.rmtree(args.home, ignore_errors=True)
    config = StackConfig(
        home=args.home,
        database=args.database,
        prefect_port=args.prefect_port,
        control_plane_port=args.control_plane_port,
        execution_workers_port=8081 if args.via_execution_workers else None,
    )
    parts = "prefect server, sandbox, control plane and worker"
    if args.database == "embedded-postgres":
        parts = f"PostgreSQL, {parts}"
    print(f"Starting {parts} (logs in {args.home}/logs)")
    with Stack(config) as stack:
        up = time.monotonic() - started
        print(f"Platform up in {up:.0f} s; Prefect UI at {stack.prefect_ui_url}")
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
        failed = [o.workflow for o in outcomes if not o.ok]
        if failed:
            print(f"\nNot completed: {', '.join(failed)} (worker log: {stack.logs / 'worker.log'})")
        if not args.once:
            print("\nServing until Ctrl-C ...", flush=True)
            _wait_for_interrupt()
        return 1 if failed else 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _wait_for_interrupt() -> None:
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        print("\nStopping ...", flush=True)
