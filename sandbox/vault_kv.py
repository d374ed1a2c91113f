"""The KV v2 engine of the Vault sandbox, without HTTP: keys, versions, cas, listing.

Kept apart from the routes (``sandbox/vault.py``) so the rules clients depend on read in
one place (``tests/contracts/specs/vault-kv2-notes.md`` §3-§4, from the KV plugin's
``path_data.go``): every write adds a version starting at 1; ``cas: 0`` writes only a
new key and any other mismatch is a 400; soft-deleted versions read as 404 with their
metadata; old versions are pruned beyond ``max_versions`` (10 by default). Callers hold
the sandbox's lock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

DEFAULT_MAX_VERSIONS = 10
CAS_MISMATCH = "check-and-set parameter did not match the current version"
CAS_REQUIRED = "check-and-set parameter required for this call"


class VaultError(Exception):
    """An answer in Vault's error format ``{"errors": [...]}`` (empty for a plain 404)."""

    def __init__(self, status: int, *errors: str) -> None:
        super().__init__(status)
        self.status, self.errors = status, list(errors)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def to_int(raw: Any, default: int) -> int:
    try:
        return int(raw) if raw not in (None, "") else default
    except (TypeError, ValueError):
        return default


@dataclass
class Version:
    data: dict[str, Any]
    created_time: str = field(default_factory=now)
    deletion_time: str = ""
    destroyed: bool = False

    @property
    def alive(self) -> bool:
        return not self.deletion_time and not self.destroyed

    def metadata(self, number: int) -> dict[str, Any]:
        return {
            "created_time": self.created_time,
            "custom_metadata": None,
            "deletion_time": self.deletion_time,
            "destroyed": self.destroyed,
            "version": number,
        }


@dataclass
class Key:
    versions: dict[int, Version] = field(default_factory=dict)
    current_version: int = 0
    created_time: str = field(default_factory=now)
    updated_time: str = field(default_factory=now)
    max_versions: int = 0
    cas_required: bool = False
    custom_metadata: dict[str, str] | None = None

    def metadata(self) -> dict[str, Any]:
        return {
            "cas_required": self.cas_required,
            "created_time": self.created_time,
            "current_version": self.current_version,
            "custom_metadata": self.custom_metadata,
            "delete_version_after": "0s",
            "max_versions": self.max_versions,
            "oldest_version": min(self.versions, default=0),
            "updated_time": self.updated_time,
            "versions": {
                str(n): {
                    "created_time": v.created_time,
                    "deletion_time": v.deletion_time,
                    "destroyed": v.destroyed,
                }
                for n, v in sorted(self.versions.items())
            },
        }


class KvMount:
    """One KV v2 mount: its keys and its backend-level configuration."""

    def __init__(self) -> None:
        self.keys: dict[str, Key] = {}
        self.config: dict[str, Any] = {
            "cas_required": False,
            "delete_version_after": "0s",
            "max_versions": 0,
        }

    def read(self, path: str, raw_version: str | None) -> tuple[int, dict[str, Any]]:
        key = self.keys.get(path)
        if key is None:
            raise VaultError(404)
        number = to_int(raw_version, 0) or key.current_version
        version = key.versions.get(number)
        if version is None:
            raise VaultError(404)
        payload = {"data": version.data if version.alive else None}
        payload["metadata"] = version.metadata(number)
        # A deleted version is a 404 that still describes itself.
        return (200 if version.alive else 404), payload

    def write(self, path: str, body: dict[str, Any], *, patch: bool = False) -> dict[str, Any]:
        if not path:
            raise VaultError(405, "unsupported operation")
        data = body.get("data")
        if not isinstance(data, dict):
            raise VaultError(400, "no data provided")
        key = self.keys.get(path)
        if patch:  # JSON merge patch of the live version; null removes a field
            live = key.versions.get(key.current_version) if key else None
            if live is None or not live.alive:
                raise VaultError(404)
            merged = {**live.data, **data}
            data = {k: v for k, v in merged.items() if v is not None}
        options = body.get("options") or {}
        cas = options.get("cas") if isinstance(options, dict) else None
        if cas is None and (self.config["cas_required"] or (key is not None and key.cas_required)):
            raise VaultError(400, CAS_REQUIRED)
        current = key.current_version if key is not None else 0
        if cas is not None and (
            isinstance(cas, bool) or not isinstance(cas, int) or cas != current
        ):
            raise VaultError(400, CAS_MISMATCH)
        if key is None:
            key = self.keys[path] = Key()
        key.current_version += 1
        version = key.versions[key.current_version] = Version(data=dict(data))
        key.updated_time = version.created_time
        limit = key.max_versions or to_int(self.config["max_versions"], 0) or DEFAULT_MAX_VERSIONS
        while len(key.versions) > limit:
            del key.versions[min(key.versions)]
        return version.metadata(key.current_version)

    def delete_latest(self, path: str) -> None:
        key = self.keys.get(path)
        if key is not None and key.current_version in key.versions:
            key.versions[key.current_version].deletion_time = now()

    def metadata(self, path: str) -> dict[str, Any]:
        if path not in self.keys:
            raise VaultError(404)
        return self.keys[path].metadata()

    def write_metadata(self, path: str, body: dict[str, Any]) -> None:
        key = self.keys.setdefault(path, Key())
        if "max_versions" in body:
            key.max_versions = to_int(body["max_versions"], 0)
        if "cas_required" in body:
            key.cas_required = bool(body["cas_required"])
        if "custom_metadata" in body:
            key.custom_metadata = body["custom_metadata"] or None
        key.updated_time = now()

    def delete_metadata(self, path: str) -> None:
        self.keys.pop(path, None)

    def list(self, path: str) -> dict[str, Any]:
        """Immediate children of ``path``; folders end in ``/``; nothing there is a 404."""
        prefix = f"{path}/" if path else ""
        children = {
            rest.split("/", 1)[0] + ("/" if "/" in rest else "")
            for name in self.keys
            if name.startswith(prefix) and (rest := name[len(prefix) :])
        }
        if not children:
            raise VaultError(404)
        return {"keys": sorted(children)}

    def configure(self, body: dict[str, Any]) -> None:
        for name in ("cas_required", "max_versions", "delete_version_after"):
            if name in body:
                self.config[name] = body[name]
