"""The token engine behind Authenticator: the slow path and the refreshes it leads.

The hot path (a fresh cached token) lives in :class:`~n3xt_creds.Authenticator` and
never comes here. This module handles everything else: a stale token (start one
background refresh, hand out the current token), an expired or missing one (join the
single flight of :mod:`.cache`, lead it or wait for it), and running the
refresh protocol of :mod:`.flow` with blocking I/O (``httpx.Client``, ``time.sleep``,
the source on this thread) or async I/O (``httpx.AsyncClient``, ``asyncio.sleep``,
the source in a worker thread).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
import random
import threading
import time
from collections.abc import Callable, Generator, Iterator
from typing import TYPE_CHECKING, Any

from ..credentials import Credentials
from ..errors import N3XTCredsError, TokenRequestError
from .aio import asyncio
from .cache import BACKGROUND_RETRY_INTERVAL, CachedToken, FailureMemory, Flight, TokenCell
from .flow import (
    CredentialsUnchanged,
    ReadCredentials,
    RefreshResult,
    refresh_flow,
    run_async,
    run_sync,
)
from .logfields import fields
from .retry import RetryPolicy
from .stats import AuthEvent, StatsRecorder
from .telemetry import Telemetry
from .token import Phase
from .transport import TokenHttp

if TYPE_CHECKING:
    from ..sources.base import CredentialSource
    from .shared.coordinator import SharedTokens

__all__ = ["FOLLOWER_GRACE", "REFRESH_JITTER", "Refresher"]

logger = logging.getLogger("n3xt_creds")

#: A caller waiting for another caller's refresh gives up this long after the
#: refresh's deadline (the source read and the last answer's parsing take a moment).
FOLLOWER_GRACE = 1.0
#: Default refresh-point jitter: each token goes stale up to this fraction of its
#: lifetime early, at random, so instances started together do not refresh in step.
REFRESH_JITTER = 0.05


class Refresher:
    """Gets a usable token when the cached one is not fresh; one refresh at a time."""

    def __init__(
        self,
        source: CredentialSource,
        *,
        token_url: str,
        refresh_margin: float,
        retry: RetryPolicy,
        clock: Callable[[], float],
        http: TokenHttp,
        stats: StatsRecorder,
        telemetry: Telemetry,
        shared: SharedTokens | None = None,
        refresh_jitter: float = REFRESH_JITTER,
        rng: random.Random | None = None,
        failure_memory: bool = True,
        cheap_source: bool = False,
    ) -> None:
        self._source = source
        # The host- or fleet-wide L2 under the cell (None: this process alone).
        self.shared = shared
        self._token_url = token_url
        self._refresh_margin = refresh_margin
        self._retry = retry
        self._clock = clock
        self._http = http
        self._stats = stats
        # No healthy refresh outlives its deadline plus a request timeout and a slow
        # source read; one that does lost its leader (a task destroyed with its loop).
        self._abandon_after = retry.deadline + 3 * http.timeout + 5.0
        # After a cool-down, one token request tells whether N3XT is back: a probe
        # makes one attempt (a rejected pair still gets its one re-read of the source).
        self._probe_retry = RetryPolicy(max_attempts=1, deadline=retry.deadline)
        self._refresh_jitter = refresh_jitter
        self._rng = rng if rng is not None else random.Random()  # noqa: S311 - jitter
        self.cell = TokenCell(
            abandon_after=self._abandon_after,
            rng=self._rng,
            failure_memory=failure_memory,
            cheap_source=cheap_source,
        )
        self._telemetry = telemetry
        telemetry.watch_expiry(functools.partial(_expires_at, self.cell))
        if shared is not None:
            shared.on_lookup = telemetry.shared_lookup
            telemetry.watch_shared_failures(lambda: shared.stats.failures)
        self.last_good: Credentials | None = None
        self.tasks: set[asyncio.Task[None]] = set()  # strong refs: asyncio keeps weak ones
        self.threads: list[threading.Thread] = []

    def _usable(
        self, now: float, loop: asyncio.AbstractEventLoop | None
    ) -> tuple[CachedToken | None, Flight | None]:
        """The cached token if it may be used now, and a background refresh to start
        if it is stale and nobody started one (the caller starts it its own way)."""
        cached = self.cell.current
        if cached is None:
            return None, None
        phase = cached.token.phase(now)
        if phase is Phase.FRESH:
            return cached, None
        if phase is Phase.STALE:
            return cached, self.cell.begin_background(now, loop=loop)
        return None, None

    def cached_sync(self) -> CachedToken:
        looked_up = False
        while True:
            now = self._clock()
            cached, background = self._usable(now, None)
            if not looked_up:
                looked_up = True
                self._telemetry.cache_lookup("process", hit=cached is not None)
            if background is not None:
                self._start_background_thread(background)
            if cached is not None:
                return cached
            cached, flight, leader = self.cell.join(now)
            if cached is not None:
                return cached
            assert flight is not None
            if leader:
                self._refresh_sync(flight)
            else:
                _refuse_to_block_own_loop(flight)
                flight.wait(self._wait_limit(flight))
            settled = self._settle(flight)
            if settled is not None:
                return settled

    async def cached_async(self) -> CachedToken:
        loop = asyncio.get_running_loop()
        looked_up = False
        while True:
            now = self._clock()
            cached, background = self._usable(now, loop)
            if not looked_up:
                looked_up = True
                if not self._telemetry.loaded:  # importing opentelemetry takes ~25 ms
                    await asyncio.to_thread(self._telemetry.load)
                self._telemetry.cache_lookup("process", hit=cached is not None)
            if background is not None:
                self._start_task(loop, background)
            if cached is not None:
                return cached
            cached, flight, leader = self.cell.join(now, loop=loop)
            if cached is not None:
                return cached
            assert flight is not None
            if leader:
                # The refresh runs as its own task: cancelling this caller (a timeout
                # around one request) must not abort the refresh everyone waits for.
                self._start_task(loop, flight)
            await flight.wait_async(self._wait_limit(flight))
            settled = self._settle(flight)
            if settled is not None:
                return settled

    def _wait_limit(self, flight: Flight) -> float:
        """How long a caller may wait for ``flight``: until its deadline, plus a grace."""
        if flight.done:
            return 0.0
        ends = flight.started_at + self._retry.deadline + FOLLOWER_GRACE
        return max(0.0, ends - time.monotonic())

    def _settle(self, flight: Flight) -> CachedToken | None:
        """What a caller gets once ``flight`` is over; ``None``: look again (leader
        cancelled, or a credentials check found nothing new)."""
        if flight.memory is not None:
            return self._remembered(flight.memory)
        if not flight.done:
            raise self._still_running(flight)
        if flight.kind == "check" and flight.token is None and flight.error is None:
            # The source still serves the pair that failed: the remembered failure
            # (unless invalidate() ended it meanwhile: then look again).
            memory = self.cell.memory
            return None if memory is None else self._remembered(memory)
        if flight.error is not None:
            return self._after_failed_refresh(flight.error)
        if flight.token is None:
            return None
        # Re-check the cache: it may hold an even newer token, or none (a 401 dropped it).
        current = self.cell.still_valid(self._clock())
        if current is not None:
            return current
        # The token this refresh got, even one that arrived already expired (its
        # answer took its whole life; the flow warned): the callers that waited for it
        # get it, rather than a new token request at once, and another, and another.
        return flight.token

    def _still_running(self, flight: Flight) -> TokenRequestError:
        waited = time.monotonic() - flight.started_at
        return TokenRequestError(
            f"The token refresh in progress has run {waited:.1f} s, past its "
            f"{self._retry.deadline:g} s deadline (RetryPolicy.deadline); this call stops "
            "waiting for it. No second token request is started while it runs. If this "
            "repeats, the credential source or the token endpoint is hanging.",
            retryable=True,
        )

    def _remembered(self, memory: FailureMemory) -> CachedToken:
        """A caller during a cool-down: the still-valid token, else the remembered error."""
        now = self._clock()
        still_valid = self.cell.still_valid(now)
        if still_valid is not None:
            return still_valid
        self._stats.record(
            AuthEvent("remembered_failure_served", error=type(memory.error).__name__)
        )
        raise memory.error_for_caller(now)

    def _after_failed_refresh(self, error: Exception) -> CachedToken:
        still_valid = self.cell.still_valid(self._clock())
        if still_valid is not None:
            logger.warning(
                "Token refresh failed (%s); keeping the current token, valid for %.0f s more",
                type(error).__name__,
                still_valid.token.expires_at - self._clock(),
                extra=fields("refresh_failed_token_kept", result="kept_token"),
            )
            return still_valid
        raise _copy_for_this_caller(error)

    # -- leading a refresh ------------------------------------------------------------

    def _new_flow(self, flight: Flight) -> Generator[Any, object, RefreshResult]:
        trigger = self._telemetry.trigger(
            background=flight.background,
            has_token=self.cell.current is not None,
            check=flight.kind == "check",
        )
        check = flight.kind == "check"
        flow = refresh_flow(
            token_url=self._token_url,
            refresh_margin=self._refresh_margin,
            policy=self._retry if flight.kind == "refresh" else self._probe_retry,
            last_good=self.last_good,
            clock=self._clock,
            rng=self._rng,
            reason="cooldown_check"
            if check
            else "cooldown_probe"
            if flight.kind == "probe"
            else "refresh",
            refresh_jitter=self._refresh_jitter,
            only_if_changed=check,
            rejected=flight.rejected,
            trigger=trigger,
        )
        return self._telemetry.observe(flow, trigger=trigger)

    def _read_credentials(self, flight: Flight, action: ReadCredentials) -> Credentials:
        # Sources read their backend at every call, so the invalid_client re-read
        # ("bypass any cache") needs nothing special here.
        credentials = self._source.get_credentials()
        flight.credentials = credentials  # the pair a failure is remembered against
        return credentials

    async def _aread_credentials(self, flight: Flight, action: ReadCredentials) -> Credentials:
        # Sources are synchronous (hvac, boto3): never on the event loop.
        return await asyncio.to_thread(self._read_credentials, flight, action)

    def _refresh_sync(self, flight: Flight) -> None:
        with self._settling(flight) as settle:

            def own_refresh() -> RefreshResult:
                return run_sync(
                    self._new_flow(flight),
                    read=functools.partial(self._read_credentials, flight),
                    send=self._http.send,
                    sleep=time.sleep,
                )

            # A cool-down check asks the source only: with env or file sources it runs
            # at every call, and must not become a storm on the shared store either.
            if self.shared is None or flight.kind == "check":
                settle(own_refresh())
            else:
                settle(
                    self.shared.obtain_sync(
                        self._credentials_for_shared(),
                        background=flight.background,
                        current=self.cell.current,
                        refresh=own_refresh,
                    )
                )

    async def _refresh_async(self, flight: Flight) -> None:
        with self._settling(flight) as settle:
            async with self._http.async_client() as client:

                async def own_refresh() -> RefreshResult:
                    return await run_async(
                        self._new_flow(flight),
                        read=functools.partial(self._aread_credentials, flight),
                        send=functools.partial(self._http.asend, client),
                        sleep=asyncio.sleep,
                    )

                if self.shared is None or flight.kind == "check":  # see _refresh_sync
                    result = await own_refresh()
                else:
                    result = await self.shared.obtain_async(
                        await asyncio.to_thread(self._credentials_for_shared),
                        background=flight.background,
                        current=self.cell.current,
                        refresh=own_refresh,
                    )
            settle(result)

    def _credentials_for_shared(self) -> Credentials | None:
        """The pair that names the shared entry: the last good one, else a fresh read
        (``None`` if the source fails: the refresh itself then reports why)."""
        if self.last_good is not None:
            return self.last_good
        try:
            return self._source.get_credentials()
        except Exception:
            return None

    @contextlib.contextmanager
    def _settling(self, flight: Flight) -> Iterator[Callable[[RefreshResult], None]]:
        """Settle ``flight`` however the refresh inside ends, for both drivers.

        Success is reported through the yielded callable; a failure (``Exception``) is
        recorded and swallowed, waiters get it; a cancellation (``BaseException``) frees
        the waiters and propagates.
        """
        started = self._clock()
        if flight.credentials is None and self.last_good is not None:
            flight.credentials = self.last_good  # until the source is read (or if it fails)
        try:
            yield functools.partial(self._refresh_succeeded, flight)
        except CredentialsUnchanged:
            # A cool-down check found the pair that failed: nothing new to try yet.
            self.cell.finish(flight, None, None, now=self._clock())
        except Exception as exc:
            self._refresh_failed(flight, exc, self._clock() - started)
        except BaseException:
            self.cell.finish(flight, None, None, now=self._clock())
            raise

    def _refresh_succeeded(self, flight: Flight, result: RefreshResult) -> None:
        self.last_good = result.credentials
        remembered = self.cell.memory is not None
        self.cell.finish(flight, CachedToken(result.token), None, now=self._clock())
        if remembered:
            logger.info(
                "Token refresh succeeded again: the remembered failure is over",
                extra=fields("cooldown_ended", result="success"),
            )
            self._stats.record(AuthEvent("cooldown_ended", reason="success"))
        now = self._clock()
        if now >= result.token.expires_at:
            self._stats.record(
                AuthEvent(
                    "token_expired_on_arrival",
                    expires_in=result.token.expires_in,
                    duration=now - result.token.obtained_at,
                    request_id=result.token.request_id,
                )
            )
        if result.attempts == 0:
            return  # adopted from the shared cache: no token request, not a refresh
        self._stats.record(
            AuthEvent(
                "refresh_succeeded",
                duration=result.elapsed,
                attempts=result.attempts,
                request_id=result.token.request_id,
                expires_in=result.token.expires_in,
                background=flight.background,
            )
        )

    def _refresh_failed(self, flight: Flight, error: Exception, duration: float) -> None:
        self.cell.finish(flight, None, error, now=self._clock())
        memory = self.cell.memory
        if memory is not None and memory.flight is not flight and memory.error is error:
            logger.warning(
                "Token refresh failed %d time(s) in a row (%s); remembering the failure: "
                "callers get it at once, without a token request, for the next %.1f s "
                "(invalidate() or new credentials at the source end this sooner)",
                memory.failures,
                type(error).__name__,
                memory.cooldown,
                extra=fields(
                    "cooldown_started",
                    request_id=getattr(error, "request_id", None),
                    result="failure",
                ),
            )
            self._stats.record(
                AuthEvent(
                    "cooldown_started",
                    error=type(error).__name__,
                    cooldown=memory.cooldown,
                    failures=memory.failures,
                    request_id=getattr(error, "request_id", None),
                )
            )
        request_id = getattr(error, "request_id", None)
        # The class name only: a third-party source's message could quote a secret.
        if flight.background:
            logger.warning(
                "Background token refresh failed after %.3f s (%s, request_id=%s); the "
                "current token stays in use and the next background attempt waits %g s",
                duration,
                type(error).__name__,
                request_id,
                BACKGROUND_RETRY_INTERVAL,
                extra=fields(
                    "background_refresh_failed",
                    trigger="stale",
                    duration=duration,
                    request_id=request_id,
                    result="failure",
                ),
            )
        else:
            # The callers get the exception, and the flow logged the ERROR line already.
            logger.debug(
                "Token refresh failed after %.3f s (%s, request_id=%s)",
                duration,
                type(error).__name__,
                request_id,
                extra=fields(
                    "refresh_failed", duration=duration, request_id=request_id, result="failure"
                ),
            )
        self._stats.record(
            AuthEvent(
                "refresh_failed",
                duration=duration,
                error=type(error).__name__,
                request_id=request_id,
                background=flight.background,
            )
        )

    def _start_background_thread(self, flight: Flight) -> None:
        thread = threading.Thread(
            target=self._refresh_sync, args=(flight,), name="n3xt-creds-refresh", daemon=True
        )
        self.threads = [t for t in self.threads if t.is_alive()] + [thread]
        thread.start()

    def _start_task(self, loop: asyncio.AbstractEventLoop, flight: Flight) -> None:
        task = loop.create_task(self._refresh_async(flight), name="n3xt-creds-refresh")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def wait_for_background(self, timeout: float) -> None:
        """Let a background refresh thread finish (bounded), e.g. before closing."""
        for thread in self.threads:
            thread.join(timeout)

    async def wait_for_tasks(self, timeout: float) -> None:
        """Let this event loop's refresh tasks finish (bounded)."""

        loop = asyncio.get_running_loop()
        mine = [task for task in self.tasks if task.get_loop() is loop]
        if mine:
            await asyncio.wait(mine, timeout=timeout)

    def reset_after_fork(self) -> None:
        """In a forked child: no refresh in flight, no parent threads or loop tasks."""
        self.cell.reset_after_fork()
        if self.shared is not None:
            self.shared.reset_after_fork()
        self.tasks = set()
        self.threads = []


def _expires_at(cell: TokenCell) -> float | None:
    """The cached token's expiry (for the telemetry gauge), ``None`` without one."""
    cached = cell.current
    return None if cached is None else cached.token.expires_at


def _refuse_to_block_own_loop(flight: Flight) -> None:
    """A sync wait on the thread whose event loop leads the refresh would deadlock."""

    if flight.loop is None:
        return
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        return
    if running is flight.loop:
        raise N3XTCredsError(
            "get_token()/headers() was called from a coroutine while this event loop is "
            "refreshing the token: waiting would deadlock. Use `await aget_token()` / "
            "`await aheaders()` (or httpx.AsyncClient) inside async code."
        )


def _copy_for_this_caller(error: Exception) -> Exception:
    """Each waiter raises its own copy: one exception object raised in many threads
    would have its traceback rewritten under everyone's feet."""
    try:
        duplicate = copy.copy(error)
    except Exception:
        return error
    duplicate.__cause__ = error.__cause__
    duplicate.__suppress_context__ = error.__suppress_context__
    return duplicate
