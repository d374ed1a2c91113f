"""Column types and field types every control-plane model shares."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import Field
from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

# Prefect flow-run ids are UUIDs; tests and other engines may use other opaque ids.
FLOW_RUN_ID_PATTERN = r"^[A-Za-z0-9_.:-]+$"
FlowRunId = Annotated[str, Field(min_length=1, max_length=64, pattern=FLOW_RUN_ID_PATTERN)]
# Short free text for people (why a status changed); never a secret value.
Reason = Annotated[str, Field(max_length=500)]
ID_LENGTH = 64


# Facts that anyone who can read them may see (event payloads, compensation arguments):
# keys that name a credential are refused.
_SECRET_KEY = re.compile(
    r"(password|passwd|token|api_?key|private_?key|credential|secret_?value|^value$)", re.I
)


def secret_looking_keys(document: Any, prefix: str = "") -> list[str]:
    """The dotted paths of every key in ``document`` that looks like it holds a credential."""
    found: list[str] = []
    if isinstance(document, dict):
        for key, value in document.items():
            path = f"{prefix}{key}"
            if _SECRET_KEY.search(str(key)):
                found.append(path)
            found.extend(secret_looking_keys(value, path + "."))
    elif isinstance(document, list):
        for index, item in enumerate(document):
            found.extend(secret_looking_keys(item, f"{prefix}{index}."))
    return found


def json_depth_over(document: Any, limit: int) -> bool:
    """Whether ``document`` nests more than ``limit`` objects and arrays, itself included
    (iterative, so a deep document cannot exhaust the stack)."""
    pending = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict | list):
            if depth > limit:
                return True
            children = value.values() if isinstance(value, dict) else value
            pending.extend((child, depth + 1) for child in children)
    return False


def has_non_finite_number(document: Any) -> bool:
    """Whether ``document`` holds NaN or an infinity (Python's JSON parser accepts them;
    JSON, PostgreSQL and our answers do not)."""
    pending = [document]
    while pending:
        value = pending.pop()
        if isinstance(value, float) and not math.isfinite(value):
            return True
        if isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return False


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every database.

    PostgreSQL keeps the zone (``timestamptz``); SQLite has none, so values are stored as
    naive UTC and come back aware.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
