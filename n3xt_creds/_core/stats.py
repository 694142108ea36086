"""Counters and events an application can export as metrics.

``Authenticator.stats`` is a snapshot (:class:`AuthenticatorStats`); ``on_event`` is
called with an :class:`AuthEvent` when something worth a metric happens. Neither ever
holds a token or a secret.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal, NamedTuple

if TYPE_CHECKING:
    from .telemetry import Telemetry

__all__ = ["AuthEvent", "AuthenticatorStats", "EventKind", "StatsRecorder"]

logger = logging.getLogger("n3xt_creds")

EventKind = Literal["refresh_succeeded", "refresh_failed", "token_invalidated", "request_replayed"]


class AuthEvent(NamedTuple):
    """Something happened that an application may want to count.

    * ``refresh_succeeded``: a new token; ``duration`` (seconds, whole refresh with
      retries), ``attempts``, ``request_id``, ``expires_in``.
    * ``refresh_failed``: a refresh gave up; ``duration``, ``error`` (the exception's
      class name) and ``request_id`` when N3XT answered.
    * ``token_invalidated``: the cached token was dropped; ``reason`` is ``"invalidate"``
      (the application called :meth:`~n3xt_creds.Authenticator.invalidate`) or
      ``"api_401"`` (the API rejected it).
    * ``request_replayed``: a request was sent again with a new token after a 401.

    ``background`` is true for refreshes started in the stale phase (nobody waited).
    """

    kind: EventKind
    duration: float | None = None
    attempts: int | None = None
    request_id: str | None = None
    expires_in: float | None = None
    error: str | None = None
    reason: str | None = None
    background: bool = False


class AuthenticatorStats(NamedTuple):
    """A snapshot of an authenticator's counters (``Authenticator.stats``).

    ``refreshes``/``failures`` count whole refreshes (each may have made several token
    requests); ``last_refresh_seconds`` is how long the last
    successful refresh took; ``token_age`` is how old the cached token is (``None``
    without one); ``phase`` is ``"fresh"``, ``"stale"``, ``"expired"`` or ``None``;
    ``replays`` counts requests re-sent after an API 401.
    """

    refreshes: int
    failures: int
    last_refresh_seconds: float | None
    token_age: float | None
    phase: str | None
    replays: int


class StatsRecorder:
    """Thread-safe counters plus the ``on_event`` hook (whose exceptions are logged, not raised).

    Every event also goes to ``telemetry`` (OpenTelemetry), when given.
    """

    def __init__(
        self, on_event: Callable[[AuthEvent], object] | None, telemetry: Telemetry | None = None
    ) -> None:
        self._on_event = on_event
        self._telemetry = telemetry
        self._lock = threading.Lock()
        self.refreshes = 0
        self.failures = 0
        self.replays = 0
        self.last_refresh_seconds: float | None = None

    def record(self, event: AuthEvent) -> None:
        """Count ``event`` and hand it to the hook."""
        with self._lock:
            if event.kind == "refresh_succeeded":
                self.refreshes += 1
                self.last_refresh_seconds = event.duration
            elif event.kind == "refresh_failed":
                self.failures += 1
            elif event.kind == "request_replayed":
                self.replays += 1
        if self._telemetry is not None:
            self._telemetry.on_event(event)
        if self._on_event is None:
            return
        try:
            self._on_event(event)
        except Exception:
            # A broken metrics hook must not break authentication.
            logger.exception("n3xt_creds on_event hook raised on a %s event", event.kind)

    def reset_after_fork(self) -> None:
        """In a forked child: a new lock (the parent's may have been held at fork) and
        counters from zero, so each worker reports its own refreshes, not the master's."""
        self._lock = threading.Lock()
        self.refreshes = 0
        self.failures = 0
        self.replays = 0
        self.last_refresh_seconds = None
