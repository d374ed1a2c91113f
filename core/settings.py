"""How settings are read from the environment; each consumer declares its own.

A settings class lives next to the code that reads it and holds only its variables
(``core.telemetry.TracingSettings``, ``blocks.settings.GitHubSettings``,
``services.platform.control_plane.settings.ControlPlaneSettings``, ...). Field names are
the environment variable names, which are public: rename none. Every class derives from
``EnvSettings``, which fixes how the environment is read (exact names, other variables
ignored).

Nothing reads the environment at import time: ``SomeSettings.current()`` reads it on first
use and keeps the result for the process (tests change the environment, then call
``reset_settings()``). Constructing a class (``SomeSettings(NAME=value)``) reads the
environment afresh, with the given values on top.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Self

from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent

_current: dict[type[EnvSettings], EnvSettings] = {}
_lock = threading.Lock()


class EnvSettings(BaseSettings):
    """Base of every settings class: field names are environment variable names."""

    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore")

    @classmethod
    def current(cls) -> Self:
        """This class read from the environment once, on first use (``reset_settings()``
        forgets it)."""
        found = _current.get(cls)
        if found is None:
            fresh = cls()  # outside the lock: reading may fail, and is cheap to repeat
            with _lock:
                found = _current.setdefault(cls, fresh)
        assert isinstance(found, cls)
        return found


def reset_settings() -> None:
    """Forget every settings object ``current()`` read: the next use reads the environment
    again (tests call it after changing variables)."""
    with _lock:
        _current.clear()
