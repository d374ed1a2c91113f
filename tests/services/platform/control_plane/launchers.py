"""A workflow launcher for tests: records launches and invents run ids (no Prefect)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from core.errors import DomainError
from services.platform.control_plane.launcher import WorkflowLauncher


@dataclass
class Launch:
    workflow: str
    parameters: dict[str, Any]
    idempotency_key: str
    flow_run_id: str
    labels: dict[str, str]


class RecordingLauncher(WorkflowLauncher):
    """A launcher for tests: records launches and invents run ids.

    Like Prefect, it returns the same run for the same idempotency key. ``fail_with``
    makes every launch raise (e.g. ``WorkflowEngineUnavailable``); ``delay_seconds``
    widens race windows in concurrency tests.
    """

    def __init__(
        self,
        *,
        ui_url: str = "http://prefect.test",
        fail_with: DomainError | None = None,
        delay_seconds: float = 0.0,
    ) -> None:
        super().__init__(api_url=f"{ui_url}/api", ui_url=ui_url)
        self.fail_with = fail_with
        self.delay_seconds = delay_seconds
        self.launches: list[Launch] = []
        self._lock = threading.Lock()

    async def _create_flow_run(
        self,
        deployment: str,
        parameters: dict[str, Any],
        idempotency_key: str,
        labels: dict[str, str],
    ) -> str:
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        if self.fail_with is not None:
            raise self.fail_with
        workflow = deployment.split("/", 1)[0]
        with self._lock:
            for launch in self.launches:
                if launch.workflow == workflow and launch.idempotency_key == idempotency_key:
                    return launch.flow_run_id
            launch = Launch(workflow, parameters, idempotency_key, str(uuid.uuid4()), labels)
            self.launches.append(launch)
            return launch.flow_run_id
