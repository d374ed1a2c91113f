"""Record the HTTP calls one workflow item makes, and turn them into a replayable template.

The lower bound of every benchmark case is "the same HTTP calls, at the same concurrency,
made by plain asyncio + httpx". Rather than re-implementing each workflow by hand (and
drifting from what the blocks really send), the benchmark runs one item through the
product's own code while ``Recorder`` captures every request the blocks make (PyGithub and
hvac go through ``requests``, Harbor, the secret endpoints and the control plane through
``httpx``). ``Template`` then replays that sequence for other items:

- ``static`` substitutions rename the calibration item (its application, environment,
  secret and robot names) to the item's;
- every UUID in a request (event ids, flow-run ids used as lock holders) is replaced by a
  fresh one per item, consistently within the item, so idempotency keys do not collapse;
- values that came from an earlier *response* (Harbor's robot id in ``PATCH /robots/{id}``,
  the new robot secret stored in Vault) are captured from the replayed response at the same
  JSON path ("correlation", as load-testing tools call it).

Recorded headers hold credentials: they stay in memory and never reach the results file.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import requests

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Response strings at least this long are correlated wherever they reappear; shorter
# values (ids) only when they are a whole segment of a later URL path.
LONG_VALUE = 12
_SKIP_HEADERS = {"content-length", "host", "connection", "accept-encoding", "user-agent"}


@dataclass(frozen=True)
class Call:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    status: int
    response: bytes

    @property
    def netloc(self) -> str:
        return urlsplit(self.url).netloc


class Recorder:
    """Captures the requests sent through ``requests`` and ``httpx.Client`` meanwhile.

    Only requests to ``hosts`` (``host:port``) are kept, so calls to the Prefect API made
    while loading blocks are left out.
    """

    def __init__(self, hosts: set[str]) -> None:
        self.hosts = hosts
        self.calls: list[Call] = []
        self._lock = threading.Lock()

    def _keep(self, call: Call) -> None:
        if call.netloc in self.hosts:
            with self._lock:
                self.calls.append(call)

    @contextlib.contextmanager
    def recording(self) -> Iterator[Recorder]:
        original_requests = requests.Session.send
        original_httpx = httpx.Client.send
        recorder = self

        def requests_send(
            session: requests.Session, request: requests.PreparedRequest, **kwargs: Any
        ) -> requests.Response:
            response = original_requests(session, request, **kwargs)
            body = request.body or b""
            recorder._keep(
                Call(
                    method=str(request.method),
                    url=str(request.url),
                    headers=dict(request.headers),
                    body=body.encode() if isinstance(body, str) else bytes(body),
                    status=response.status_code,
                    response=response.content,
                )
            )
            return response

        def httpx_send(client: httpx.Client, request: httpx.Request, **kwargs: Any) -> Any:
            response = original_httpx(client, request, **kwargs)
            response.read()
            recorder._keep(
                Call(
                    method=request.method,
                    url=str(request.url),
                    headers=dict(request.headers),
                    body=request.content,
                    status=response.status_code,
                    response=response.content,
                )
            )
            return response

        requests.Session.send = requests_send  # type: ignore[method-assign,assignment]
        httpx.Client.send = httpx_send  # type: ignore[method-assign,assignment]
        try:
            yield self
        finally:
            requests.Session.send = original_requests  # type: ignore[method-assign]
            httpx.Client.send = original_httpx  # type: ignore[method-assign]


def _scalars(data: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _scalars(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _scalars(value, (*path, index))
    elif isinstance(data, str | int) and not isinstance(data, bool):
        yield path, data


def _extract(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


@dataclass(frozen=True)
class Capture:
    """A value of response ``call`` at ``path`` that a later request reuses."""

    call: int
    path: tuple[Any, ...]
    value: str
    whole_segment: bool  # short value: replaced only as a whole URL path segment


@dataclass
class Template:
    """A recorded item's calls, replayable for another item."""

    calls: list[Call]
    static: dict[str, str] = field(default_factory=dict)  # calibration name -> placeholder
    captures: list[Capture] = field(default_factory=list)

    @classmethod
    def build(cls, calls: list[Call], static: Mapping[str, str]) -> Template:
        template = cls(calls=list(calls), static=dict(static))
        template.captures = template._find_captures()
        return template

    def _find_captures(self) -> list[Capture]:
        captures: list[Capture] = []
        seen: set[str] = set()
        for index, call in enumerate(self.calls):
            try:
                data = json.loads(call.response) if call.response else None
            except ValueError:
                continue
            later = self.calls[index + 1 :]
            for path, raw in _scalars(data):
                value = str(raw)
                if value in seen or value in self.static or UUID_RE.fullmatch(value):
                    continue
                if len(value) >= LONG_VALUE and any(
                    value in c.url or value.encode() in c.body for c in later
                ):
                    captures.append(Capture(index, path, value, whole_segment=False))
                    seen.add(value)
                elif any(value in urlsplit(c.url).path.split("/") for c in later) and (
                    isinstance(raw, int) and value not in self._constant_segments()
                ):
                    captures.append(Capture(index, path, value, whole_segment=True))
                    seen.add(value)
        return captures

    def _constant_segments(self) -> set[str]:
        """Path segments already in the first call that uses them (API versions etc.)."""
        return {"1", "2", "v1", "v2", "v3", "v2.0"}

    def count_by_host(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for call in self.calls:
            counts[call.netloc] = counts.get(call.netloc, 0) + 1
        return counts

    def item(self, names: Mapping[str, str]) -> ItemReplay:
        """A replay of this template for one item (``names``: calibration name -> item's)."""
        return ItemReplay(self, dict(names))


class ItemReplay:
    """The state of one item's replay: its substitutions grow as responses come back."""

    def __init__(self, template: Template, names: dict[str, str]) -> None:
        self.template = template
        self.text: dict[str, str] = dict(names)
        self.segments: dict[str, str] = {}
        for call in template.calls:
            for found in UUID_RE.findall(call.url) + UUID_RE.findall(call.body.decode("latin-1")):
                self.text.setdefault(found, str(uuid.uuid4()))

    def _apply(self, value: str) -> str:
        for old in sorted(self.text, key=len, reverse=True):
            value = value.replace(old, self.text[old])
        return value

    def request(self, index: int) -> tuple[str, str, dict[str, str], bytes]:
        call = self.template.calls[index]
        url = self._apply(call.url)
        if self.segments:
            parts = urlsplit(url)
            path = "/".join(self.segments.get(s, s) for s in parts.path.split("/"))
            url = parts._replace(path=path).geturl()
        headers = {
            k: self._apply(v) for k, v in call.headers.items() if k.lower() not in _SKIP_HEADERS
        }
        body = self._apply(call.body.decode("latin-1")).encode("latin-1") if call.body else b""
        return call.method, url, headers, body

    def learn(self, index: int, response: bytes) -> None:
        """Take the correlated values out of the replayed response of call ``index``."""
        captures = [c for c in self.template.captures if c.call == index]
        if not captures:
            return
        data = json.loads(response)
        for capture in captures:
            new = str(_extract(data, capture.path))
            if capture.whole_segment:
                self.segments[capture.value] = new
            else:
                self.text[capture.value] = new
