"""Helpers shared by the Vault tests (fixtures are in conftest.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import requests

# -- small helpers for tests ------------------------------------------------------------


class RequestLog:
    """Counts Vault requests through a real ``requests.Session`` response hook."""

    def __init__(self) -> None:
        self.session = requests.Session()
        self.calls: list[tuple[str, str, int]] = []
        self.session.hooks["response"].append(self._record)

    def _record(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        path = requests.utils.urlparse(response.request.url).path or ""
        self.calls.append((str(response.request.method), path, response.status_code))

    def count(self, fragment: str) -> int:
        return sum(1 for _, path, _ in self.calls if fragment in path)

    def close(self) -> None:
        self.session.close()


class FakeClock:
    """A monotonic clock the test moves by hand (token lifetimes without sleeping)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RecordingSleep:
    """Records requested delays; sleeps for real only when ``real`` (Retry-After tests)."""

    def __init__(self, *, real: bool = False, on_sleep: Callable[[], None] | None = None) -> None:
        self.delays: list[float] = []
        self.real = real
        self.on_sleep = on_sleep

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        if self.on_sleep is not None:
            self.on_sleep()
        if self.real:
            time.sleep(seconds)


def assert_no_secret(text: str, *secret_values: str) -> None:
    """Fail if any secret value shows up in ``text`` (messages, reprs, logs)."""
    for value in secret_values:
        assert value not in text, "a secret value leaked into user-visible text"
