"""The platform family's block types (``prefect block register -m blocks.platform.catalog``)."""

from __future__ import annotations

from prefect.blocks.core import Block

from blocks.platform.control_plane import ControlPlane
from blocks.platform.execution_workers import ExecutionWorkers

PLATFORM_BLOCK_TYPES: tuple[type[Block], ...] = (ControlPlane, ExecutionWorkers)
