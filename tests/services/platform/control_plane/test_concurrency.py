"""Hundreds of concurrent requests on a real socket: every one is answered, none waits
for a database connection that a finished request still holds.

FastAPI runs a sync ``yield`` dependency's cleanup in a worker thread of its own. When
every worker thread is a handler waiting for a pooled connection, the cleanups that would
return connections wait for a thread: nothing moves until the pool's 30 s timeout, then
500s (fastapi#3205). The bench found it at concurrency 100 on PostgreSQL (pool 30 < 40
threads); the session dependency now closes on the event loop.
"""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI

from tests.services.platform.control_plane.live import LiveServer

REQUESTS = 300


async def _read_concurrently(url: str) -> list[int]:
    limits = httpx.Limits(max_connections=REQUESTS, max_keepalive_connections=REQUESTS)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:

        async def one(i: int) -> int:
            response = await client.get("/api/v1/applications", params={"limit": 1 + i % 5})
            return response.status_code

        return list(await asyncio.gather(*(one(i) for i in range(REQUESTS))))


def test_hundreds_of_concurrent_reads_are_all_answered(app: FastAPI) -> None:
    with LiveServer(app) as server:
        statuses = asyncio.run(_read_concurrently(server.url))
    assert statuses.count(200) == REQUESTS, sorted(set(statuses))
