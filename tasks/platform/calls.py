"""The bridge from async steps to the platform's synchronous blocks.

The blocks are synchronous (PyGithub, httpx.Client, hvac) and the flows async (an async
flow costs ~0.2 s less per run than a sync one), so every block call runs in a worker
thread, traced (``tasks.platform.tracing``: a span per block call under the step's span).
anyio's limiter (40 threads) bounds the threads; a batch of N items at concurrency C
keeps at most C calls in flight because each item runs its steps one after the other.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import ParamSpec, TypeVar

import anyio.to_thread

from tasks.platform.tracing import traced_call

P = ParamSpec("P")
T = TypeVar("T")


async def in_thread(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a sync block call in a worker thread, traced."""
    with traced_call(fn, args, kwargs):
        return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs))


def widen_thread_pool(concurrency: int) -> None:
    """Let ``concurrency`` block calls run at once in this run's event loop (anyio's default
    is 40 threads; a batch at concurrency 100 would otherwise wait for threads)."""
    limiter = anyio.to_thread.current_default_thread_limiter()
    limiter.total_tokens = max(limiter.total_tokens, concurrency)
