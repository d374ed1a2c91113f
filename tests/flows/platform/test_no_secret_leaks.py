"""No secret value reaches logs, artifacts, events, results or run records.

The workflows run for real (provisioning, a rotation, a rotation whose bindings fail and
is retried, a sweep with a store that fails after Harbor issued a value); then every
place Prefect and the control plane keep things is searched for every secret value the
test can know: Harbor robot secrets before and after, the values Vault holds, and the
credentials of the blocks themselves.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hvac
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.events.filters import EventFilter, EventOccurredFilter, EventResourceFilter
from prefect.settings import get_current_settings
from prefect.states import State
from prefect.types._datetime import now

from blocks.platform.workflows import (
    ApplicationEnvironmentProvisioningRequest,
    SecretRotationRequest,
    SecretRotationSweepRequest,
)
from blocks.vault import VaultSecretBackend
from flows.platform.environment_provisioning import application_environment_provisioning
from flows.platform.secret_rotation import secret_rotation
from flows.platform.secret_rotation_sweep import secret_rotation_sweep
from sandbox.run import Sandbox
from tests.flows.platform.support import (
    ControlPlaneServer,
    Domain,
    flow_run_id,
    read_artifacts,
    read_logs,
    retry_flow_run,
    robot_secret,
    run,
)


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(logging.Formatter().format(record))


@pytest.fixture
def every_log_line() -> Iterator[list[str]]:
    """Every log record of the process at DEBUG, formatted with its traceback."""
    handler = Collect()
    loggers = [logging.getLogger(), logging.getLogger("prefect")]
    levels = [logger.level for logger in loggers]
    loggers[0].addHandler(handler)
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    yield handler.lines
    loggers[0].removeHandler(handler)
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


def vault_values(sandbox: Sandbox) -> list[str]:
    """Every value Vault holds (provisioned environment secrets and rotated ones)."""
    client = hvac.Client(url=sandbox.vault.url, token=sandbox.vault.token)
    kv = client.secrets.kv.v2
    values = []
    for path in sandbox.vault.state()["mounts"]["secret"]:
        data = kv.read_secret_version(
            path=path, mount_point="secret", raise_on_deleted_version=True
        )
        values.append(str(data["data"]["data"]["value"]))
    return values


async def prefect_records(run_ids: list[uuid.UUID], since: Any) -> list[str]:
    """Logs, artifacts, flow runs, task runs and events as Prefect stores them."""
    texts = [log.message for log in await read_logs(run_ids)]
    for run_id in run_ids:
        texts += [a.model_dump_json() for a in await read_artifacts(run_id)]
    async with get_client() as client:
        runs = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=run_ids))
        )
        texts += [r.model_dump_json() for r in runs]
        texts += [
            t.model_dump_json()
            for t in await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=run_ids))
            )
        ]
        events: list[Any] = []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:  # the event persister writes asynchronously
            page = await client.read_events(
                EventFilter(
                    occurred=EventOccurredFilter(since=since),
                    resource=EventResourceFilter(id_prefix=["idp."]),
                ),
                limit=50,
            )
            events = list(page.events)
            while page.next_page is not None:
                page = await client.read_events_page(str(page.next_page))
                events += page.events
            names = {e.event for e in events}
            if {"workflow_secret_rotation_completed", "workflow_secret_rotation_failed"} <= names:
                break
            time.sleep(0.5)
        assert events, "no idp.* event reached Prefect"
        texts += [e.model_dump_json() for e in events]
    return texts


def result_files() -> list[str]:
    storage = Path(get_current_settings().results.local_storage_path)
    return [p.read_bytes().decode("latin-1") for p in storage.rglob("*") if p.is_file()]


def test_no_secret_value_is_logged_published_or_persisted(
    own_control_plane: ControlPlaneServer, sandbox: Sandbox, every_log_line: list[str]
) -> None:
    since = now("UTC")
    domain = Domain(own_control_plane, sandbox)
    env_id = domain.environment()
    rotated, rotated_robot = domain.secret(environments=(env_id,))
    pending, pending_robot = domain.secret(environments=(env_id,))
    swept, swept_robot = domain.secret(environments=(env_id,))
    lost, lost_robot = domain.secret()
    robots = (rotated_robot, pending_robot, swept_robot, lost_robot)
    before = [robot_secret(sandbox, r) for r in robots]
    states: list[State[Any]] = []

    request = ApplicationEnvironmentProvisioningRequest(environment_id=env_id)
    states.append(run(application_environment_provisioning(request=request, return_state=True)))
    states.append(
        run(secret_rotation(request=SecretRotationRequest(secret_id=rotated), return_state=True))
    )
    sandbox.endpoints.server.faults.add(path="/secrets/bindings/update", statuses=[403])
    failed = run(
        secret_rotation(request=SecretRotationRequest(secret_id=pending), return_state=True)
    )
    states += [failed, run(retry_flow_run(secret_rotation, flow_run_id(failed)))]
    sandbox.vault.server.faults.add(path=f"/data/idp/secrets/{lost}$", statuses=[403])
    states.append(
        run(secret_rotation_sweep(request=SecretRotationSweepRequest(), return_state=True))
    )
    assert [s.type.value for s in states] == [
        "COMPLETED",
        "COMPLETED",
        "FAILED",
        "COMPLETED",
        "COMPLETED",
    ]
    sweep = states[-1].result()
    assert {i.secret_id: i.outcome.value for i in sweep.items} == {
        swept: "rotated",
        lost: "failed",
    }

    after = [robot_secret(sandbox, r) for r in robots]
    assert not set(before) & set(after)  # every robot was rotated
    backend = VaultSecretBackend.from_env()
    credentials = [
        sandbox.harbor.robot_secret("robot$idp-rotator"),
        sandbox.github.token,
        sandbox.vault.token,
        backend.token.get_secret_value(),
    ]
    values = sorted({*before, *after, *vault_values(sandbox), *credentials})
    assert len(values) >= 12

    run_ids = sorted({flow_run_id(s) for s in states})
    haystacks = {
        "logs of this process": every_log_line,
        "prefect records": run(prefect_records(run_ids, since)),
        "results": [json.dumps(s.result(raise_on_failure=False), default=str) for s in states],
        "result storage": result_files(),
        "control plane": [
            json.dumps(domain.get("/api/v1/events?limit=200")),
            *(json.dumps(domain.secret_state(s)) for s in (rotated, pending, swept, lost)),
        ],
    }
    assert every_log_line and haystacks["result storage"]
    # Report which value leaked by its index, so the test output does not leak it either.
    leaks = {
        where: sorted({f"value #{i}" for i, v in enumerate(values) for t in texts if v in t})
        for where, texts in haystacks.items()
    }
    assert leaks == {where: [] for where in haystacks}
