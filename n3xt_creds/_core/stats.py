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

from .logfields import fields

if TYPE_CHECKING:
    from .telemetry import Telemetry

__all__ = ["AuthEvent", "AuthenticatorStats", "EventKind", "StatsRecorder"]

logger = logging.getLogger("n3xt_creds")

EventKind = Literal[
    "refresh_succeeded",
    "refresh_failed",
    "token_invalidated",
    "request_replayed",
    "cooldown_started",
    "cooldown_ended",
    "remembered_failure_served",
    "api_401_passed_through",
    "token_expired_on_arrival",
]


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

    Static stability (DESIGN.md, "Static stability"):

    * ``cooldown_started``: a foreground refresh failed for good and the failure is
      now remembered; ``error`` (class name), ``request_id``, ``cooldown`` (seconds
      until the next token request is allowed) and ``failures`` (failed refreshes in a
      row: the cool-down grows with it).
    * ``cooldown_ended``: the failure memory ended; ``reason`` is ``"success"`` (a
      probe or a check with new credentials got a token) or ``"invalidate"``.
    * ``remembered_failure_served``: a caller got the remembered error at once, with
      no token request; ``error`` (class name). One per caller served.
    * ``api_401_passed_through``: the API refused the token that had replaced a token
      it refused less than a cool-down ago; the 401 went to the caller and no new
      token was requested. ``reason`` is ``"api_401"`` (httpx, requests) or
      ``"invalidate"`` (``invalidate(token)``), ``failures`` the rejections in a row.
    * ``token_expired_on_arrival``: a token's ``expires_in`` was shorter than the
      round trip that got it; ``expires_in``, ``duration`` (the round trip). It was
      handed to the callers that waited for it all the same.

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
    cooldown: float | None = None
    failures: int | None = None


class AuthenticatorStats(NamedTuple):
    """A snapshot of an authenticator's counters (``Authenticator.stats``).

    ``refreshes``/``failures`` count whole refreshes (each may have made several token
    requests); ``last_refresh_seconds`` is how long the last
    successful refresh took; ``token_age`` is how old the cached token is (``None``
    without one); ``phase`` is ``"fresh"``, ``"stale"``, ``"expired"`` or ``None``;
    ``replays`` counts requests re-sent after an API 401.

    Static stability: ``cooldowns_started`` counts failures remembered (each
    ``cooldown_started`` event); ``remembered_failures_served`` the calls answered with
    the remembered error and no token request; ``api_401s_passed_through`` the API 401s
    handed to the caller instead of fetching yet another token; ``cooldown_remaining``
    is the seconds until the next token request is allowed (``None``: no failure is
    remembered).
    """

    refreshes: int
    failures: int
    last_refresh_seconds: float | None
    token_age: float | None
    phase: str | None
    replays: int
    cooldowns_started: int = 0
    remembered_failures_served: int = 0
    api_401s_passed_through: int = 0
    cooldown_remaining: float | None = None


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
        self._zero()

    def _zero(self) -> None:
        """Every counter from zero: at construction, and in a forked child."""
        self.refreshes = 0
        self.failures = 0
        self.replays = 0
        self.cooldowns_started = 0
        self.remembered_failures_served = 0
        self.api_401s_passed_through = 0
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
            elif event.kind == "remembered_failure_served":
                self.remembered_failures_served += 1
            elif event.kind == "cooldown_started":
                self.cooldowns_started += 1
            elif event.kind == "api_401_passed_through":
                self.api_401s_passed_through += 1
        if self._telemetry is not None:
            self._telemetry.on_event(event)
        if self._on_event is None:
            return
        try:
            self._on_event(event)
        except Exception:
            # A broken metrics hook must not break authentication.
            logger.exception(
                "n3xt_creds on_event hook raised on a %s event",
                event.kind,
                extra=fields("on_event_hook_failed"),
            )

    def reset_after_fork(self) -> None:
        """In a forked child: a new lock (the parent's may have been held at fork) and
        counters from zero, so each worker reports its own refreshes, not the master's."""
        self._lock = threading.Lock()
        self._zero()
