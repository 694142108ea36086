"""The one way tests wait for something: poll a condition until a deadline, never sleep a
fixed time. Fails the test with what it was waiting for."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

__all__ = ["await_until", "wait_until"]

_INTERVAL = 0.002


def wait_until(condition: Callable[[], bool], *, timeout: float = 10.0, what: str = "") -> None:
    """Poll ``condition`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    interval = _INTERVAL
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        time.sleep(interval)
        interval = min(interval * 2, 0.05)


async def await_until(
    condition: Callable[[], bool], *, timeout: float = 10.0, what: str = ""
) -> None:
    """:func:`wait_until` for async tests: yields to the event loop between polls."""
    deadline = time.monotonic() + timeout
    interval = _INTERVAL
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        await asyncio.sleep(interval)
        interval = min(interval * 2, 0.05)
