"""Pieces every benchmark script shares (imported as ``_common``: the scripts run from
this folder, ``python benchmarks/<name>.py``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from n3xt_creds import Credentials


class StaticSource:
    """A source that always has the same pair (no I/O): isolates the authenticator."""

    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials

    def get_credentials(self) -> Credentials:
        return self.credentials

    def describe(self) -> str:
        return "static (benchmark)"


async def longest_loop_block(work: Callable[[], Awaitable[object]], *, tick: float) -> float:
    """The longest delay (ms) a ``tick``-second ticker on this loop saw while ``work`` ran."""
    worst = 0.0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal worst
        while not stop.is_set():
            start = time.perf_counter()
            await asyncio.sleep(tick)
            worst = max(worst, time.perf_counter() - start - tick)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)  # the ticker is running before the work starts
    worst = 0.0
    await work()
    stop.set()
    await task
    return worst * 1000
