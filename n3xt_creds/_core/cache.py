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

Static stability lives here too, as plain state decided under the same lock:

* **Failure memory**: a foreground refresh that fails for good leaves a
  :class:`FailureMemory`. Until its cool-down ends (full jitter over a cap that doubles
  with each consecutive failure, from :data:`COOLDOWN_BASE` up to :data:`COOLDOWN_MAX`),
  :meth:`TokenCell.join` hands callers a *remembered* flight, already settled with that
  error, instead of a new refresh. Half-way through each cool-down step one caller may
  lead a ``"check"`` flight (re-read the source; a request only if the credentials
  changed; a cheap source — env, files — at every call), and when the step ends one
  caller leads a ``"probe"`` (one token request).
  Callers arriving while either runs get the remembered failure at once: nobody piles
  up behind a probe. Success or :meth:`TokenCell.forget_failures` ends it.
* **API 401 damping**: :meth:`TokenCell.api_rejected` drops a token the API refused,
  but refuses to drop its replacement again before a cool-down has passed, so an API
  that refuses every token does not get a token request per call.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import random
import threading
import time
from typing import TYPE_CHECKING, Literal, NamedTuple

from ..errors import AuthenticatorClosedError, N3XTCredsError
from .aio import asyncio
from .logfields import fields
from .token import Phase, Token

if TYPE_CHECKING:
    from ..credentials import Credentials

__all__ = [
    "API_COOLDOWN_BASE",
    "BACKGROUND_RETRY_INTERVAL",
    "COOLDOWN_BASE",
    "COOLDOWN_MAX",
    "ApiVerdict",
    "CachedToken",
    "FailureMemory",
    "Flight",
    "FlightKind",
    "TokenCell",
    "api_cooldown_seconds",
    "cooldown_seconds",
]

logger = logging.getLogger("n3xt_creds")

# After a failed stale-phase (background) refresh, the next one waits this long.
BACKGROUND_RETRY_INTERVAL = 30.0

#: First cool-down step of the failure memory (seconds); each consecutive failure
#: doubles the cap, up to :data:`COOLDOWN_MAX`.
COOLDOWN_BASE = 1.0
#: The longest a remembered failure holds callers off the token endpoint (seconds).
COOLDOWN_MAX = 30.0
#: First cool-down of the API 401 damping (seconds): doubles per consecutive rejection.
API_COOLDOWN_BASE = 5.0
# Rejections further apart than this are unrelated: the damping starts over.
_API_STRIKES_FORGOTTEN_AFTER = 2 * COOLDOWN_MAX

FlightKind = Literal["refresh", "probe", "check"]


def cooldown_seconds(failures: int, rng: random.Random) -> float:
    """The failure memory's cool-down after ``failures`` consecutive failed refreshes.

    Full jitter (uniform over ``[0, cap]``) with ``cap = min(COOLDOWN_MAX,
    COOLDOWN_BASE * 2**(failures - 1))``: many processes that failed together spread
    their next attempts out instead of coming back in step.
    """
    cap = min(COOLDOWN_MAX, COOLDOWN_BASE * 2.0 ** min(max(failures - 1, 0), 62))
    return rng.uniform(0.0, cap)


def api_cooldown_seconds(strikes: int, rng: random.Random) -> float:
    """How long the replacement of a token the API rejected is kept, after ``strikes``
    rejections in a row, before it may be replaced again.

    Equal jitter (uniform over ``[cap/2, cap]``, ``cap = min(COOLDOWN_MAX,
    API_COOLDOWN_BASE * 2**(strikes - 1))``): the lower bound is what caps the token
    requests an API that refuses every token can cause (about five in 30 s).
    """
    cap = min(COOLDOWN_MAX, API_COOLDOWN_BASE * 2.0 ** min(max(strikes - 1, 0), 62))
    return rng.uniform(cap / 2, cap)


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
        "credentials",
        "error",
        "kind",
        "loop",
        "memory",
        "rejected",
        "started_at",
        "token",
    )

    def __init__(
        self,
        *,
        background: bool,
        loop: asyncio.AbstractEventLoop | None,
        kind: FlightKind = "refresh",
        rejected: Credentials | None = None,
    ) -> None:
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
        # "refresh" (the normal kind), "probe" (one token request after a cool-down) or
        # "check" (re-read the source; send only if it no longer serves ``rejected``).
        self.kind: FlightKind = kind
        self.rejected = rejected
        # The credentials the refresh last read (the driver records them): the pair a
        # failure is remembered against.
        self.credentials: Credentials | None = None
        # Set on the already-settled flight a FailureMemory hands out.
        self.memory: FailureMemory | None = None

    @property
    def done(self) -> bool:
        """True once the flight is over (settled, failed or abandoned by a cancelled leader)."""
        return self._done.is_set()

    def wait(self, timeout: float) -> None:
        """Block this thread until the flight is over (or ``timeout`` seconds pass)."""
        self._done.wait(timeout)

    async def wait_async(self, timeout: float) -> None:
        """Wait, without blocking the running event loop, until the flight is over
        (or ``timeout`` seconds pass)."""

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


class FailureMemory:
    """A final refresh failure, remembered for a cool-down (see the module docstring).

    ``since``/``failed_at``/``retry_at``/``check_at`` are on the cell's clock;
    ``since_wall``/``retry_at_wall`` are wall-clock epochs for messages. ``rejected``
    is the pair that failed (``None`` when the source itself failed). ``flight`` is
    settled with ``error``: what :meth:`TokenCell.join` hands callers meanwhile.
    """

    __slots__ = (
        "check_at",
        "checked",
        "error",
        "failed_at",
        "failures",
        "flight",
        "rejected",
        "retry_at",
        "retry_at_wall",
        "since",
        "since_wall",
    )

    def __init__(
        self,
        error: N3XTCredsError,
        *,
        now: float,
        cooldown: float,
        failures: int,
        since: float,
        since_wall: float,
        rejected: Credentials | None,
    ) -> None:
        self.error = error
        self.failed_at = now
        self.failures = failures
        self.since = since
        self.since_wall = since_wall
        self.retry_at = now + cooldown
        self.retry_at_wall = time.time() + cooldown
        # One source re-read per step, half-way: early enough to pick up a fix, late
        # enough that the operator had time to make one.
        self.check_at = now + cooldown / 2
        self.checked = False
        self.rejected = rejected
        self.flight = Flight(background=False, loop=None)
        self.flight.memory = self
        self.flight._resolve(None, error)

    @property
    def cooldown(self) -> float:
        """Seconds of this cool-down step."""
        return self.retry_at - self.failed_at

    def error_for_caller(self, now: float) -> N3XTCredsError:
        """A copy of the remembered error, its message saying it is remembered and until when.

        Same class and attributes (``status_code``, ``request_id``...), plus
        ``remembered = True``, ``failing_since`` and ``next_attempt_at`` (wall-clock
        epochs) and ``next_attempt_in`` (seconds).
        """
        wait = max(0.0, self.retry_at - now)
        since = time.strftime("%H:%M:%S UTC", time.gmtime(self.since_wall))
        note = (
            f" [Remembered failure: no token request was made for this call. The refresh "
            f"has failed {self.failures} time(s) in a row since {since} "
            f"({max(0.0, now - self.since):.1f} s ago); the next token request is allowed "
            f"in {wait:.1f} s. Fixing the credentials where the source reads them, or "
            "calling invalidate(), ends this sooner.]"
        )
        try:
            duplicate = copy.copy(self.error)
        except Exception:  # an exotic subclass that cannot be copied: use a plain one
            duplicate = N3XTCredsError(str(self.error))
        duplicate.args = (f"{self.error}{note}",)
        duplicate.__cause__ = None
        duplicate.__suppress_context__ = True
        duplicate.remembered = True  # type: ignore[attr-defined]
        duplicate.failing_since = self.since_wall  # type: ignore[attr-defined]
        duplicate.next_attempt_at = time.time() + wait  # type: ignore[attr-defined]
        duplicate.next_attempt_in = wait  # type: ignore[attr-defined]
        return duplicate


class ApiVerdict(NamedTuple):
    """What :meth:`TokenCell.api_rejected` decided about a token the API refused.

    ``replay``: a new token is (or is about to be) there, try again with it.
    ``dropped``: this call dropped the cached token. ``passed_through``: the token was
    the replacement of a rejected one and is kept for its cool-down: hand the 401 on.
    """

    replay: bool
    dropped: bool = False
    passed_through: bool = False
    strikes: int = 0


class TokenCell:
    """The cached token, the refresh in flight and the stale-refresh back-off.

    ``current`` is read without the lock on the hot path: it is only ever replaced,
    never mutated, so a reader sees either the old or the new token.
    """

    def __init__(
        self,
        *,
        abandon_after: float,
        rng: random.Random | None = None,
        failure_memory: bool = True,
        cheap_source: bool = False,
    ) -> None:
        # A refresh still running after this many seconds is presumed dead (its task
        # was destroyed with a closed event loop): the next caller may start another.
        self._abandon_after = abandon_after
        self._lock = threading.Lock()
        self.current: CachedToken | None = None
        self._flight: Flight | None = None
        self._background_not_before = -math.inf
        self._rng = rng if rng is not None else random.Random()  # noqa: S311 - jitter
        # Private knobs: False restores the behaviour before failure memory, or before
        # the API 401 damping (the benchmarks' baseline).
        self._failure_memory = failure_memory
        self._api_damping = True
        # A source that costs microseconds to read (env, files) is checked for new
        # credentials at every call during a cool-down, not once per step.
        self._cheap_source = cheap_source
        self.memory: FailureMemory | None = None
        # API 401 damping: rejections in a row, the token that replaced the last
        # rejected one (its header, once stored), and until when it is kept.
        self.api_strikes = 0
        self._api_last_rejection = -math.inf
        self._api_replacement_pending = False
        self._api_replacement: str | None = None
        # Whether the API refused the replacement during its cool-down (it refuses
        # every token) or not (a later refusal is a new revocation: start over).
        self._api_replacement_refused = False
        self.api_keep_until = -math.inf

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
            memory = self.memory
            if self._flight is not None and not self._abandoned(self._flight):
                # Behind a probe or a check nobody waits: the remembered failure, at once.
                return None, self._flight if memory is None else memory.flight, False
            kind: FlightKind = "refresh"
            if memory is not None:
                if now >= memory.retry_at:
                    kind = "probe"
                elif self._cheap_source or (now >= memory.check_at and not memory.checked):
                    memory.checked = True
                    kind = "check"
                else:
                    return None, memory.flight, False
            flight = self._flight = Flight(
                background=False,
                loop=loop,
                kind=kind,
                rejected=None if memory is None else memory.rejected,
            )
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
                self.memory = None
                if self._api_replacement_pending:
                    self._api_replacement_pending = False
                    self._api_replacement = token.header
                    self._api_replacement_refused = False
            elif flight.background and error is not None:
                self._background_not_before = now + BACKGROUND_RETRY_INTERVAL
            elif error is not None and isinstance(error, N3XTCredsError):
                self._remember(flight, error, now)
            if self._flight is flight:
                self._flight = None
        flight._resolve(token, error)

    def _remember(self, flight: Flight, error: N3XTCredsError, now: float) -> None:
        # Called with the lock held, for a failed foreground refresh.
        if not self._failure_memory or isinstance(error, AuthenticatorClosedError):
            return
        previous = self.memory
        failures = 1 if previous is None else previous.failures + 1
        self.memory = FailureMemory(
            error,
            now=now,
            cooldown=cooldown_seconds(failures, self._rng),
            failures=failures,
            since=now if previous is None else previous.since,
            since_wall=time.time() if previous is None else previous.since_wall,
            rejected=flight.credentials,
        )

    def forget_failures(self) -> FailureMemory | None:
        """End the failure memory and the API 401 damping (``invalidate()``); return the
        memory that was ended, if any."""
        with self._lock:
            memory, self.memory = self.memory, None
            self.api_strikes = 0
            self._api_replacement_pending = False
            self._api_replacement = None
            self.api_keep_until = -math.inf
            return memory

    def cooldown_remaining(self, now: float) -> float | None:
        """Seconds until a remembered failure allows the next token request; ``None``
        when no failure is remembered."""
        memory = self.memory
        return None if memory is None else max(0.0, memory.retry_at - now)

    # -- API 401 damping ---------------------------------------------------------------

    def api_rejected(self, header: str, now: float) -> ApiVerdict:
        """The API answered 401 to ``header``: drop it, unless it was already replaced
        (``replay``, nothing dropped) or it is the replacement of a token rejected less
        than a cool-down ago (``passed_through``: the API refuses every token)."""
        with self._lock:
            cached = self.current
            if cached is None or cached.header != header:
                return ApiVerdict(replay=True)
            if now - self._api_last_rejection > _API_STRIKES_FORGOTTEN_AFTER:
                self.api_strikes = 0
                self._api_replacement = None
            if header == self._api_replacement and now < self.api_keep_until and self._api_damping:
                self._api_replacement_refused = True
                return ApiVerdict(replay=False, passed_through=True, strikes=self.api_strikes)
            if header == self._api_replacement and self._api_replacement_refused:
                # A replacement the API refused during its cool-down, refused again
                # after it: one more try, held back longer next time.
                self.api_strikes += 1
                self.api_keep_until = now + api_cooldown_seconds(self.api_strikes, self._rng)
            elif header == self._api_replacement:
                # First refused after its cool-down (headers() users never tell us of
                # an accepted call): a new revocation, not an API refusing every token.
                self.api_strikes = 1
                self.api_keep_until = now + api_cooldown_seconds(1, self._rng)
            else:
                self.api_strikes = max(self.api_strikes, 1)
                self.api_keep_until = now + api_cooldown_seconds(self.api_strikes, self._rng)
            self._api_last_rejection = now
            self._api_replacement_pending = True
            self._api_replacement = None
            self.current = None
            return ApiVerdict(replay=True, dropped=True, strikes=self.api_strikes)

    def api_accepted(self, header: str) -> None:
        """The API accepted ``header``: a later rejection starts the damping over."""
        with self._lock:
            if self._api_replacement == header or (
                self.current is not None and self.current.header == header
            ):
                self.api_strikes = 0
                self._api_replacement = None
                self._api_replacement_pending = False

    def _abandoned(self, flight: Flight) -> bool:
        if time.monotonic() - flight.started_at < self._abandon_after:
            return False
        logger.warning(
            "A token refresh started %.0f s ago never finished (was its event loop closed?); "
            "starting a new one",
            time.monotonic() - flight.started_at,
            extra=fields("refresh_abandoned"),
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
        if self.memory is not None:
            # Its settled flight holds a lock of the parent: rebuild it from the facts.
            old = self.memory
            self.memory = FailureMemory(
                old.error,
                now=old.failed_at,
                cooldown=old.cooldown,
                failures=old.failures,
                since=old.since,
                since_wall=old.since_wall,
                rejected=old.rejected,
            )
