"""The token cache and single-flight refresh, shared by threads and asyncio tasks.

One :class:`TokenCell` per authenticator holds the cached token and, at most, one
:class:`Flight` (a refresh in progress). A caller that needs a token and finds none
usable *joins*: under one ``threading.Lock`` it either finds that someone refreshed
meanwhile, becomes the leader of a new flight, or becomes a follower of the current
one. Followers wait without holding anything: threads on a ``threading.Event``,
asyncio tasks on a future of *their own* loop, resolved from whichever thread the
leader runs in with ``loop.call_soon_threadsafe`` — so no event loop ever blocks on
a threading primitive, and threads, tasks and several loops share one refresh.

The leader stores the new token *before* it clears the flight, under the same lock,
so a caller that arrives later always sees one or the other: exactly one token
request per refresh, however many callers race.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from typing import TYPE_CHECKING

from .token import Phase, Token

if TYPE_CHECKING:
    import asyncio

__all__ = ["BACKGROUND_RETRY_INTERVAL", "CachedToken", "Flight", "TokenCell"]

logger = logging.getLogger("n3xt_creds")

# After a failed stale-phase (background) refresh, the next one waits this long.
BACKGROUND_RETRY_INTERVAL = 30.0


class CachedToken:
    """A token with its ready-made header, so the hot path builds nothing."""

    __slots__ = ("header", "raw", "stale_at", "token")

    def __init__(self, token: Token) -> None:
        self.token = token
        self.raw = token.value()
        self.header = f"Bearer {self.raw}"
        self.stale_at = token.stale_at

    def __repr__(self) -> str:
        return f"CachedToken({self.token!r})"


class Flight:
    """One refresh in progress. Its leader calls :meth:`TokenCell.finish` exactly once."""

    __slots__ = (
        "_async_waiters",
        "_done",
        "_lock",
        "background",
        "error",
        "loop",
        "started_at",
        "token",
    )

    def __init__(self, *, background: bool, loop: asyncio.AbstractEventLoop | None) -> None:
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._async_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self.error: Exception | None = None
        self.token: CachedToken | None = None  # what a successful refresh got
        self.background = background
        # The event loop whose task leads this flight (None: a thread leads it). A
        # thread of that loop must not block waiting for it: it would never finish.
        self.loop = loop
        # Real time, not the injected clock: it measures how long the leader has been gone.
        self.started_at = time.monotonic()

    def wait(self, timeout: float) -> None:
        """Block this thread until the flight is over (or ``timeout`` seconds pass)."""
        self._done.wait(timeout)

    async def wait_async(self, timeout: float) -> None:
        """Wait, without blocking the running event loop, until the flight is over
        (or ``timeout`` seconds pass)."""
        import asyncio  # noqa: PLC0415 - loaded by async callers only; keeps `import n3xt_creds` cheap

        loop = asyncio.get_running_loop()
        with self._lock:
            if self._done.is_set():
                return
            future: asyncio.Future[None] = loop.create_future()
            self._async_waiters.append((loop, future))
        await asyncio.wait([future], timeout=timeout)

    def _resolve(self, token: CachedToken | None, error: Exception | None) -> None:
        with self._lock:
            self.token = token
            self.error = error
            self._done.set()
            waiters, self._async_waiters = self._async_waiters, []
        for loop, future in waiters:
            # A closed loop raises RuntimeError: nobody can be waiting on it any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_wake, future)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():  # the waiting task may have been cancelled meanwhile
        future.set_result(None)


class TokenCell:
    """The cached token, the refresh in flight and the stale-refresh back-off.

    ``current`` is read without the lock on the hot path: it is only ever replaced,
    never mutated, so a reader sees either the old or the new token.
    """

    def __init__(self, *, abandon_after: float) -> None:
        # A refresh still running after this many seconds is presumed dead (its task
        # was destroyed with a closed event loop): the next caller may start another.
        self._abandon_after = abandon_after
        self._lock = threading.Lock()
        self.current: CachedToken | None = None
        self._flight: Flight | None = None
        self._background_not_before = -math.inf

    def join(
        self, now: float, *, loop: asyncio.AbstractEventLoop | None = None
    ) -> tuple[CachedToken | None, Flight | None, bool]:
        """For a caller without a usable token: ``(token, None, False)`` when one
        appeared meanwhile, ``(None, flight, True)`` to lead a new refresh, or
        ``(None, flight, False)`` to follow the one in progress."""
        with self._lock:
            cached = self.current
            if cached is not None and cached.token.phase(now) is not Phase.EXPIRED:
                return cached, None, False
            if self._flight is not None and not self._abandoned(self._flight):
                return None, self._flight, False
            flight = self._flight = Flight(background=False, loop=loop)
            return None, flight, True

    def begin_background(
        self, now: float, *, loop: asyncio.AbstractEventLoop | None = None
    ) -> Flight | None:
        """Start a stale-phase refresh unless one runs or the last one failed recently."""
        # Unlocked pre-check: during the stale window every call comes here.
        flight = self._flight
        if (
            flight is not None and not self._abandoned(flight)
        ) or now < self._background_not_before:
            return None
        with self._lock:
            cached = self.current
            if self._flight is not None and not self._abandoned(self._flight):
                return None
            if now < self._background_not_before:
                return None
            if cached is None or cached.token.phase(now) is not Phase.STALE:
                return None  # refreshed meanwhile (or expired: callers will wait instead)
            self._flight = Flight(background=True, loop=loop)
            return self._flight

    def finish(
        self,
        flight: Flight,
        token: CachedToken | None,
        error: Exception | None,
        *,
        now: float,
    ) -> None:
        """End ``flight``: store ``token`` (if any) and wake every follower.

        ``token`` and ``error`` both ``None`` means the leader was cancelled: followers
        wake, find no new token and one of them leads a new refresh.
        """
        with self._lock:
            if token is not None:
                self.current = token
                self._background_not_before = -math.inf
            elif flight.background and error is not None:
                self._background_not_before = now + BACKGROUND_RETRY_INTERVAL
            if self._flight is flight:
                self._flight = None
        flight._resolve(token, error)

    def _abandoned(self, flight: Flight) -> bool:
        if time.monotonic() - flight.started_at < self._abandon_after:
            return False
        logger.warning(
            "A token refresh started %.0f s ago never finished (was its event loop closed?); "
            "starting a new one",
            time.monotonic() - flight.started_at,
        )
        return True

    def in_flight(self) -> Flight | None:
        """The refresh in progress, if any (a snapshot)."""
        return self._flight

    def still_valid(self, now: float) -> CachedToken | None:
        """The cached token if it has not actually expired yet (its last 30 s count too)."""
        cached = self.current
        if cached is not None and now < cached.token.expires_at:
            return cached
        return None

    def drop(self, header: str | None = None) -> bool:
        """Forget the cached token; with ``header``, only if it is still that token."""
        with self._lock:
            cached = self.current
            if cached is None or (header is not None and cached.header != header):
                return False
            self.current = None
            return True

    def reset_after_fork(self) -> None:
        """In a forked child: new lock, no refresh in flight (its leader does not exist here).

        The cached token is kept: it is this process's own copy and still valid.
        """
        self._lock = threading.Lock()
        self._flight = None
        self._background_not_before = -math.inf
