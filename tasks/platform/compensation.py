"""The platform's compensation log: the control plane's database, over its internal API.

``core.steps`` records a run's undo actions through a ``CompensationLog``; the platform's
lives with the rest of its durable state, in control-plane-api
(``/internal/v1/workflow-runs/{flow_run_id}/compensations``), so a run that died can be
compensated by a later attempt, and what was undone is visible next to the run's events.
"""

from __future__ import annotations

from typing import Any

from blocks.platform.control_plane import ControlPlane
from core.steps import CompensationEntry
from tasks.platform.calls import in_thread


class ControlPlaneCompensationLog:
    """``core.steps.CompensationLog`` on the ControlPlane block."""

    def __init__(self, control_plane: ControlPlane) -> None:
        self.control_plane = control_plane

    async def record(
        self, run_id: str, *, key: str, step: str, undo: str, arguments: dict[str, Any]
    ) -> None:
        await in_thread(
            self.control_plane.record_compensation,
            run_id,
            key=key,
            step=step,
            undo=undo,
            arguments=arguments,
        )

    async def entries(self, run_id: str) -> list[CompensationEntry]:
        listed = await in_thread(self.control_plane.list_compensations, run_id)
        return [
            CompensationEntry(
                id=str(entry.id),
                key=entry.key,
                step=entry.step,
                undo=entry.undo,
                arguments=dict(entry.arguments),
                done=entry.done,
                error=entry.error,
            )
            for entry in listed.entries
        ]

    async def settle(self, run_id: str, entry_id: str, *, error: str | None = None) -> None:
        await in_thread(self.control_plane.settle_compensation, run_id, entry_id, error=error)
