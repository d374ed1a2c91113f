"""FastAPI dependencies, as ``Annotated`` aliases the routers use in their signatures."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request

from services.platform.execution_workers.events import EventReporter
from services.platform.execution_workers.ledger import Ledger
from services.platform.execution_workers.metrics import WorkerMetrics
from services.platform.execution_workers.operations import Operations
from services.platform.execution_workers.providers import Providers
from services.platform.execution_workers.settings import ExecutionWorkersSettings

FLOW_RUN_HEADER = "X-Flow-Run-Id"


@dataclass(frozen=True)
class WorkerState:
    """What one app instance owns (tests build many apps side by side)."""

    settings: ExecutionWorkersSettings
    providers: Providers
    metrics: WorkerMetrics
    reporter: EventReporter
    ledger: Ledger


def get_state(request: Request) -> WorkerState:
    state = request.app.state.execution_workers
    assert isinstance(state, WorkerState)
    return state


StateDep = Annotated[WorkerState, Depends(get_state)]


def get_providers(state: StateDep) -> Providers:
    return state.providers


ProvidersDep = Annotated[Providers, Depends(get_providers)]

FlowRunId = Annotated[
    str | None,
    Header(
        alias=FLOW_RUN_HEADER,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$",
        description="The calling Prefect flow run: events are linked to it and reported "
        "once per step outcome however often the step is retried",
    ),
]


def get_operations(state: StateDep, flow_run_id: FlowRunId = None) -> Operations:
    return Operations(state.reporter, state.metrics, flow_run_id)


OperationsDep = Annotated[Operations, Depends(get_operations)]
