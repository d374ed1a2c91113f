"""Property-based: schemathesis drives every operation of the OpenAPI document with
generated requests against the sandbox; no answer may be a 5xx, and every answer must
match the documented statuses, content type and schemas. Bounded and derandomized, so it
is fast and the same on every run.

(schemathesis' ``pytest.from_fixture`` loader reads a private pytest attribute that
pytest 9 removed, so each operation runs its hypothesis strategy inside a plain test.)
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from sandbox.run import Sandbox
from services.platform.execution_workers.app import create_app
from services.platform.execution_workers.settings import ExecutionWorkersSettings
from tests.services.platform.execution_workers.support import workers_settings

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
MAX_EXAMPLES = 25


def _operations() -> list[tuple[str, str]]:
    paths = create_app(ExecutionWorkersSettings(CONTROL_PLANE_URL="")).openapi()["paths"]
    return sorted((path, method.upper()) for path, ops in paths.items() for method in ops)


@pytest.mark.parametrize(("path", "method"), _operations())
def test_no_operation_answers_5xx(sandbox: Sandbox, path: str, method: str) -> None:
    # No control plane: events are best effort, and this run is about the API surface.
    app = create_app(workers_settings(sandbox))
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
        case.call_and_validate(checks=CHECKS)

    run()
