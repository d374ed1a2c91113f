"""What the resource routers share: the error statuses they document and naming rules."""

from __future__ import annotations

import re
from typing import Any

from blocks.platform.domain import appenv_repository_name
from blocks.platform.workflows import ID_PATTERN
from services.http import error_responses

# Every status a side-effect endpoint can answer besides 200 (see docs/execution-workers.md).
SIDE_EFFECT_ERRORS: dict[int | str, dict[str, Any]] = error_responses(
    401, 403, 404, 409, 412, 422, 429, 502, 503, 504
)
_APPENV_PREFIX = appenv_repository_name("")
_ENVIRONMENT_ID = re.compile(ID_PATTERN)


def environment_of(repository: str, environment_id: str | None) -> str | None:
    """The environment a repository belongs to: given, or read from ``appenv-<id>``."""
    if environment_id:
        return environment_id
    if repository.startswith(_APPENV_PREFIX):
        candidate = repository.removeprefix(_APPENV_PREFIX)
        if _ENVIRONMENT_ID.match(candidate):
            return candidate
    return None
