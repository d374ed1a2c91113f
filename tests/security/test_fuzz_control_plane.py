"""schemathesis over every operation of control-plane-api: generated requests (valid and
not), with the internal token, against a database that holds an onboarded application,
an environment and a secret. No answer may be a 5xx, and every answer must be one the
OpenAPI document lists, with its content type and schema. Bounded and derandomized, so it
takes seconds and is the same on every run.

(execution-workers gets the same treatment in
``tests/services/platform/execution_workers/test_schemathesis.py``.)
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from pydantic import SecretStr
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from core.internal_auth import INTERNAL_TOKEN_HEADER
from services.platform.control_plane.app import create_app
from services.platform.control_plane.settings import ControlPlaneSettings
from tests.security.conftest import INTERNAL_TOKEN
from tests.services.platform.control_plane.launchers import RecordingLauncher

pytestmark = pytest.mark.security

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
MAX_EXAMPLES = 30
HEADERS = {INTERNAL_TOKEN_HEADER: INTERNAL_TOKEN}


def _app(path: Path) -> FastAPI:
    settings = ControlPlaneSettings(
        DATABASE_URL=f"sqlite:///{path}", INTERNAL_AUTH_TOKEN=SecretStr(INTERNAL_TOKEN)
    )
    return create_app(settings, launcher=RecordingLauncher())


def _operations() -> list[tuple[str, str]]:
    schema = _app(Path(tempfile.mkdtemp(prefix="cp-schema-")) / "control-plane.db").openapi()
    return sorted((path, method.upper()) for path, ops in schema["paths"].items() for method in ops)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    app = _app(tmp_path_factory.mktemp("fuzz") / "control-plane.db")
    with TestClient(app, headers=HEADERS) as client:
        client.post("/api/v1/applications", json={"name": "payments", "team": "pay"})
        for status in ("onboarding", "onboarded"):
            client.post("/internal/v1/applications/payments/transitions", json={"status": status})
        client.post("/api/v1/applications/payments/environments", json={"name": "dev"})
        client.post(
            "/api/v1/secrets",
            json={"id": "harbor-ci", "provider": "harbor-robot", "provider_ref": "ci"},
        )
        yield app


@pytest.mark.parametrize(("path", "method"), _operations())
def test_no_operation_answers_5xx_or_off_contract(app: FastAPI, path: str, method: str) -> None:
    operation = schemathesis.openapi.from_asgi("/openapi.json", app)[path][method]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=HEADERS, checks=CHECKS)

    run()
