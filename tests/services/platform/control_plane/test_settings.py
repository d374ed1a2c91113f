"""control-plane-api's settings: its database default and TTLs."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.platform.control_plane.settings import ControlPlaneSettings


def test_database_defaults_to_a_sqlite_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDP_DATA_DIR", str(tmp_path))
    assert (
        ControlPlaneSettings.current().database_url == f"sqlite:///{tmp_path / 'control-plane.db'}"
    )
    assert (
        ControlPlaneSettings(DATABASE_URL="postgresql://h/db").database_url == "postgresql://h/db"
    )


def test_ttls_default_and_must_be_positive(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = ControlPlaneSettings()
    assert settings.secret_lock_ttl == timedelta(hours=1)
    assert settings.idempotency_ttl == timedelta(days=1)
    monkeypatch.setenv("IDP_IDEMPOTENCY_TTL_SECONDS", "0")
    with pytest.raises(ValidationError, match="IDP_IDEMPOTENCY_TTL_SECONDS"):
        ControlPlaneSettings()
