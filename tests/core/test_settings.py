from __future__ import annotations

import pytest

from core.settings import PUBLIC_GITHUB_API_URL, get_settings


def test_seed_variable_names_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_API_URL", "https://ghe.example/api/v3")
    monkeypatch.setenv("GITHUB_TOKEN", "t0ken")
    monkeypatch.setenv("HARBOR_ROBOT_PASSWORD", "pw")
    monkeypatch.setenv("SECRET_BINDINGS_UPDATE_ENDPOINT", "http://x/secrets/bindings/update")
    settings = get_settings()
    assert settings.GITHUB_API_URL == "https://ghe.example/api/v3"
    assert settings.SECRET_BINDINGS_UPDATE_ENDPOINT == "http://x/secrets/bindings/update"
    # Secrets never show in a repr (logs, tracebacks).
    assert "t0ken" not in repr(settings) and "pw" not in repr(settings)


def test_public_github_is_the_default() -> None:
    assert get_settings().GITHUB_API_URL == PUBLIC_GITHUB_API_URL


def test_database_defaults_to_a_sqlite_file(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDP_DATA_DIR", str(tmp_path))
    assert get_settings().database_url == f"sqlite:///{tmp_path / 'control-plane.db'}"
