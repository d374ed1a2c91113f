"""Check recorded HTTP exchanges against an OpenAPI contract file (openapi-core).

A ``Contract`` finds the operation of a recorded request itself (so branch names with
``/`` work: the spec marks ``{branch}`` as ``x-multi-segment``, which openapi-core does not
know), then validates the request and the response with openapi-core. Exchanges for
paths the contract does not describe return None, so callers can tell "validated" from
"not contracted".

``relax_for_pygithub`` applies the documented exceptions of specs/github-notes.md §2
to the PUT branch-protection request schema, and nothing else.
"""

from __future__ import annotations

import copy
import json
import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from openapi_core import Config, OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from sandbox.github_edge import Exchange

SPECS_DIR = Path(__file__).resolve().parent / "specs"
PROTECTION_PATH = "/repos/{owner}/{repo}/branches/{branch}/protection"
# PyGithub 2.10 sends null for these although the spec types them as plain booleans.
PYGITHUB_NULLABLE = (
    "required_linear_history",
    "allow_force_pushes",
    "required_conversation_resolution",
    "lock_branch",
    "allow_fork_syncing",
    "block_creations",
    "allow_deletions",
)


def contracts_dir() -> Path:
    """``$IDP_CONTRACTS_DIR`` when set (to check against newer copies), else the copies in
    the repository (``tests/contracts/specs``; the tests never read outside the repo)."""
    override = os.environ.get("IDP_CONTRACTS_DIR")
    directory = Path(override) if override else SPECS_DIR
    if not (directory / "github-openapi-subset.json").is_file():
        raise FileNotFoundError(f"no contract files in {directory}")
    return directory


@cache
def load_spec(name: str) -> dict[str, Any]:
    return json.loads((contracts_dir() / name).read_text())


def put_protection_schema(spec: dict[str, Any]) -> dict[str, Any]:
    body = spec["paths"][PROTECTION_PATH]["put"]["requestBody"]
    return body["content"]["application/json"]["schema"]


def relax_for_pygithub(spec: dict[str, Any]) -> dict[str, Any]:
    """A copy that accepts PyGithub's nulls and ``checks`` without ``contexts``."""
    relaxed = copy.deepcopy(spec)
    schema = put_protection_schema(relaxed)
    for key in PYGITHUB_NULLABLE:
        schema["properties"][key]["nullable"] = True
    checks = schema["properties"]["required_status_checks"]
    checks["required"] = [k for k in checks["required"] if k != "contexts"]
    return relaxed


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    pattern: re.Pattern[str]
    statuses: frozenset[str]

    @property
    def key(self) -> str:
        return f"{self.method.upper()} {self.template}"


def _operations(spec: dict[str, Any]) -> list[Operation]:
    params = {p["name"]: p for p in spec["components"]["parameters"].values()}

    def group(match: re.Match[str]) -> str:
        multi = params.get(match[1], {}).get("x-multi-segment")
        return f"(?P<{match[1]}>{'.+' if multi else '[^/]+'})"

    operations = []
    for template, item in spec["paths"].items():
        regex = re.compile("^" + re.sub(r"\{(\w+)\}", group, template) + "$")
        for method, op in item.items():
            if method in ("get", "put", "post", "patch", "delete"):
                operations.append(Operation(method, template, regex, frozenset(op["responses"])))
    # Fewer variables first, then longer templates: protection before the bare branch.
    return sorted(operations, key=lambda o: (o.template.count("{"), -len(o.template)))


class Contract:
    """One spec file, served under ``prefix`` at ``host_url``."""

    def __init__(self, spec: dict[str, Any], *, prefix: str, host_url: str) -> None:
        self.prefix = prefix
        self.host_url = host_url
        self.operations = _operations(spec)
        self.api = OpenAPI.from_dict(spec, config=Config(spec_validator_cls=None))

    def find(self, method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
        if not path.startswith(self.prefix):
            return None
        local = path[len(self.prefix) :]
        for op in self.operations:
            match = op.pattern.match(local)
            if op.method == method.lower() and match:
                return op, match.groupdict()
        return None

    def check(self, exchange: Exchange, *, request_too: bool = True) -> Operation | None:
        """Validate request and response; None when the contract has no such operation.

        ``request_too=False`` for requests that are invalid on purpose (to provoke a 422).
        """
        found = self.find(exchange.method, exchange.path)
        if found is None:
            return None
        op, params = found
        request = MockRequest(
            self.host_url,
            exchange.method,
            exchange.path,
            path_pattern=self.prefix + op.template,
            view_args=params,
            args=dict(parse_qsl(exchange.query)),
            headers=exchange.request_headers,
            data=exchange.request_body,
            content_type=exchange.request_headers.get("content-type", "application/json"),
        )
        assert str(exchange.status) in op.statuses, (
            f"{op.key} answered undocumented {exchange.status}"
        )
        if request_too:
            self.api.validate_request(request)
        response = MockResponse(
            exchange.response_body,
            status_code=exchange.status,
            headers=exchange.response_headers,
            content_type=exchange.response_headers.get("content-type", "application/json"),
        )
        self.api.validate_response(request, response)
        return op
