"""Remembers which values this process already stored, so a repeated request stores once.

``/secrets/bindings/update`` is the one endpoint whose downstream call is not idempotent
by itself: a Harbor refresh issues a new secret every time, and the HTTP endpoint's
``/values`` adds a version on every call. The ledger keys each such step by what the
request names (the caller's ``rotation_id``, or a keyed hash of the value to store) and
keeps where the value went, never the value. Per-key locks make two identical requests
in flight wait for one another instead of both writing.

Scope, stated plainly: the ledger lives in this process (bounded, least recently used
evicted). A repeat that reaches another replica, or comes after a restart, runs the
step again; callers that must never double-rotate use one replica or their own key
(the workflows carry theirs in the flow-run cache).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")
MAX_ENTRIES = 10_000


class Ledger:
    """``once(key, step)``: run ``step`` the first time, replay its result after."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._done: OrderedDict[Hashable, Any] = OrderedDict()
        self._locks: dict[Hashable, threading.Lock] = {}
        self._highest: OrderedDict[Hashable, int] = OrderedDict()
        self._guard = threading.Lock()
        # Values are fingerprinted with a key that never leaves this process, so the
        # fingerprints cannot be matched against guesses elsewhere.
        self._key = secrets.token_bytes(32)

    def fingerprint(self, value: str) -> str:
        return hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()

    def once(self, key: Hashable, step: Callable[[], T]) -> tuple[T, bool]:
        """(result, replayed). A failed step records nothing, so it runs again next time."""
        with self._guard:
            if key in self._done:
                self._done.move_to_end(key)
                replay: T = self._done[key]
                return replay, True
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            with self._guard:
                if key in self._done:  # an identical request finished while we waited
                    earlier: T = self._done[key]
                    return earlier, True
            try:
                result = step()
            finally:
                with self._guard:
                    self._locks.pop(key, None)
            with self._guard:
                self._done[key] = result
                while len(self._done) > self.max_entries:
                    self._done.popitem(last=False)
            return result, False

    def highest(self, scope: Hashable, version: int) -> int:
        """Record that ``version`` of ``scope`` exists; return the highest one seen.

        A replay must not move bindings back to a value a later request replaced.
        """
        with self._guard:
            top = max(self._highest.pop(scope, version), version)
            self._highest[scope] = top
            while len(self._highest) > self.max_entries:
                self._highest.popitem(last=False)
            return top
