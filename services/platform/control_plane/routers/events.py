"""Public API: the domain event log, newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from blocks.platform.domain import Aggregate
from services.platform.control_plane.crud.events import list_events
from services.platform.control_plane.deps import Limit, Offset, SessionDep
from services.platform.control_plane.models import DomainEventsPublic
from services.platform.control_plane.views import event_view

router = APIRouter(prefix="/events", tags=["events"])


@router.get("", response_model=DomainEventsPublic)
def read_events(
    session: SessionDep,
    aggregate: Aggregate | None = None,
    aggregate_id: Annotated[str | None, Query(max_length=64)] = None,
    name: Annotated[str | None, Query(max_length=100)] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> DomainEventsPublic:
    rows, total = list_events(
        session=session,
        aggregate=aggregate,
        aggregate_id=aggregate_id,
        name=name,
        limit=limit,
        offset=offset,
    )
    return DomainEventsPublic(data=[event_view(r) for r in rows], count=total)
