"""execution-workers' settings: the provider blocks it builds (``ProviderSettings``), the
control plane it reports events to, the internal token it requires (and sends), and where
its spans go (``create_app(settings)`` takes one; the environment by default).
"""

from __future__ import annotations

from blocks.platform.settings import ControlPlaneClientSettings
from blocks.settings import ProviderSettings
from core.telemetry import TracingSettings


class ExecutionWorkersSettings(ProviderSettings, ControlPlaneClientSettings, TracingSettings):
    """Every variable execution-workers reads (``INTERNAL_AUTH_TOKEN``: required on its
    side-effect endpoints when set; an empty ``CONTROL_PLANE_URL`` reports no events)."""
