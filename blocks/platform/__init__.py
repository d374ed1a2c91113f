"""The platform family's blocks (its own services: control plane, execution-workers) and
its vocabulary (``domain``: statuses, transitions, events; ``workflows``: flow inputs
and deployment names), which its tasks, flows and services share.
"""

from __future__ import annotations

from prefect.blocks.core import Block

from blocks.platform.control_plane import ControlPlane
from blocks.platform.execution_workers import ExecutionWorkers

PLATFORM_BLOCK_TYPES: tuple[type[Block], ...] = (ControlPlane, ExecutionWorkers)

__all__ = ["PLATFORM_BLOCK_TYPES", "ControlPlane", "ExecutionWorkers"]
