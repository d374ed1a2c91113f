"""The lower bound: the workflows' HTTP calls made by plain asyncio + httpx, no engine.

Each item replays its recorded calls one after the other (a workflow's steps are
sequential); ``concurrency`` items are in flight at once. Each concurrent lane owns one
``httpx.AsyncClient``: a single client with a large pool scans the whole pool on every
request and becomes the bottleneck (research/http-client.md), so this is the fastest
httpx setup measured here. An item counts only if every call answered the status the
calibration run got, so the bound cannot be "fast" by failing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import httpx

from bench.trace import Template


@dataclass
class ReplayResult:
    items: int
    seconds: float
    durations: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    requests: int = 0

    @property
    def throughput(self) -> float:
        return (self.items - len(self.failures)) / self.seconds if self.seconds else 0.0


async def _replay_item(
    client: httpx.AsyncClient, template: Template, names: Mapping[str, str], result: ReplayResult
) -> None:
    replay = template.item(names)
    started = time.monotonic()
    for index, expected in enumerate(template.calls):
        method, url, headers, body = replay.request(index)
        response = await client.request(method, url, headers=headers, content=body or None)
        result.requests += 1
        if response.status_code != expected.status:
            label = next(iter(names.values()), "?")
            result.failures.append(
                f"{label}: call {index} {method} {httpx.URL(url).path} answered "
                f"{response.status_code}, expected {expected.status}"
            )
            return
        replay.learn(index, response.content)
    result.durations.append(time.monotonic() - started)


async def replay(
    template: Template,
    items: Sequence[Mapping[str, str]],
    concurrency: int,
    *,
    before: Sequence[tuple[str, str, Mapping[str, str]]] = (),
) -> ReplayResult:
    """Replay ``template`` once per item at ``concurrency``; ``before`` are calls made
    once, first (e.g. the sweep's list of due secrets), timed with the rest."""
    result = ReplayResult(items=len(items), seconds=0.0)
    pending = iter(items)
    limits = httpx.Limits(max_connections=8, max_keepalive_connections=8)

    async def lane() -> None:
        async with httpx.AsyncClient(timeout=120, limits=limits) as client:
            for names in pending:  # one iterator shared by every lane: each item once
                await _replay_item(client, template, names, result)

    started = time.monotonic()
    if before:
        async with httpx.AsyncClient(timeout=120) as client:
            for method, url, headers in before:
                response = await client.request(method, url, headers=dict(headers))
                response.raise_for_status()
                result.requests += 1
    await asyncio.gather(*(lane() for _ in range(min(concurrency, len(items)))))
    result.seconds = time.monotonic() - started
    return result


def run_replay(
    template: Template,
    items: Sequence[Mapping[str, str]],
    concurrency: int,
    *,
    before: Sequence[tuple[str, str, Mapping[str, str]]] = (),
) -> ReplayResult:
    return asyncio.run(replay(template, items, concurrency, before=before))
