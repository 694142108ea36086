"""Helpers for the authenticator tests: a switchable source, a fake clock, polling."""

from __future__ import annotations

import threading

from n3xt_creds import Credentials, Secret, SourceError
from n3xt_creds._core.retry import RetryPolicy

# Canary values: if either shows up in a log line, repr or exception, a secret leaked.
CANARY_SECRET = "canary-secret-Zq7xW3vR9pLk2Hn5"

# Fast retries so fault tests take milliseconds, with a deadline far from any bound.
FAST_RETRY = RetryPolicy(max_attempts=6, base_delay=0.005, max_delay=0.02, deadline=10.0)


class SwitchableSource:
    """A credential source whose answer a test can change (rotation, outage)."""

    def __init__(self, credentials: Credentials) -> None:
        self._lock = threading.Lock()
        self._credentials = credentials
        self._failing = False
        self.reads = 0

    def serve(self, credentials: Credentials) -> None:
        with self._lock:
            self._credentials = credentials

    def fail(self, failing: bool = True) -> None:
        with self._lock:
            self._failing = failing

    def describe(self) -> str:
        return "switchable test source"

    def get_credentials(self) -> Credentials:
        with self._lock:
            self.reads += 1
            if self._failing:
                raise SourceError("test source: backend down (on purpose)", source="test")
            return self._credentials


def secret_of(credentials: Credentials) -> str:
    secret: Secret = credentials.client_secret
    return secret.get_secret_value()
