"""FastAPI dependencies, as ``Annotated`` aliases routers use in their signatures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated
from weakref import WeakKeyDictionary

from fastapi import Depends, Header, Query, Request
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from services.platform.control_plane.commands import CommandContext
from services.platform.control_plane.launcher import WorkflowLauncher
from services.platform.control_plane.metrics import ControlPlaneMetrics
from services.platform.control_plane.models.idempotency import MAX_KEY_LENGTH
from services.platform.control_plane.settings import ControlPlaneSettings


@dataclass(frozen=True)
class AppState:
    """What one app instance owns (tests build many apps side by side)."""

    settings: ControlPlaneSettings
    engine: Engine
    sessions: sessionmaker[Session]
    launcher: WorkflowLauncher
    metrics: ControlPlaneMetrics
    session_slots: SessionSlots


def get_state(request: Request) -> AppState:
    state = request.app.state.control_plane
    assert isinstance(state, AppState)
    return state


StateDep = Annotated[AppState, Depends(get_state)]


class SessionSlots:
    """At most ``capacity`` requests hold a database session at once; the others wait on
    the event loop.

    A request holds its pooled connection from its handler (a worker thread) until its
    cleanup, and in between FastAPI serialises the response in another worker thread.
    Without a bound, handlers that wait for a connection can take every worker thread,
    so finished requests never get one to serialise and release theirs: nothing moves
    until the pool's 30 s timeout, then 500s (fastapi#3205; the benchmark met it at 100
    concurrent requests). Waiting here holds no thread. One semaphore per event loop
    (tests drive one app from several loops).
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._by_loop: WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            WeakKeyDictionary()
        )

    def here(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        semaphore = self._by_loop.get(loop)
        if semaphore is None:
            semaphore = self._by_loop[loop] = asyncio.Semaphore(self.capacity)
        return semaphore


async def get_session(state: StateDep) -> AsyncIterator[Session]:
    """One session per request, within ``SessionSlots``; closed on the event loop (creating
    a session connects nothing; closing returns the connection to the pool)."""
    async with state.session_slots.here():
        session = state.sessions()
        try:
            yield session
        finally:
            session.close()


SessionDep = Annotated[Session, Depends(get_session)]


def get_launcher(state: StateDep) -> WorkflowLauncher:
    return state.launcher


LauncherDep = Annotated[WorkflowLauncher, Depends(get_launcher)]


def get_metrics(state: StateDep) -> ControlPlaneMetrics:
    return state.metrics


MetricsDep = Annotated[ControlPlaneMetrics, Depends(get_metrics)]

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=MAX_KEY_LENGTH,
        description="Repeat a command with the same key to get the same answer, once",
    ),
]


def get_lock_ttl(state: StateDep) -> timedelta:
    return state.settings.secret_lock_ttl


LockTTLDep = Annotated[timedelta, Depends(get_lock_ttl)]


def get_command_context(
    state: StateDep,
    session: SessionDep,
    launcher: LauncherDep,
    metrics: MetricsDep,
    idempotency_key: IdempotencyKey = None,
) -> CommandContext:
    settings = state.settings
    return CommandContext(
        session,
        launcher,
        metrics,
        idempotency_key,
        settings.secret_lock_ttl,
        settings.idempotency_ttl,
    )


CommandDep = Annotated[CommandContext, Depends(get_command_context)]

Limit = Annotated[int, Query(ge=1, le=500, description="Page size")]
# Bounded: a database cannot skip more rows than its integers hold (an unbounded offset
# was a 500 on SQLite, found by schemathesis).
Offset = Annotated[int, Query(ge=0, le=2**31 - 1, description="Items to skip")]
