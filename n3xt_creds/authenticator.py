"""Authenticator: credentials in, a valid bearer token on every request out.

It is an ``httpx.Auth`` (sync and async clients), and offers ``get_token()``,
``headers()`` and their async twins for any other client. Behaviour (DESIGN.md,
"Behaviour the authenticator guarantees"):

* a token is *fresh*, then *stale* (a refresh starts in the background, nobody
  waits), then *expired* (callers wait for one refresh) — see :mod:`._token`;
* one refresh at a time however many threads, tasks and event loops ask
  (:mod:`._single_flight`); the refresh protocol itself (retries, ``invalid_client``,
  last-good credentials) is :mod:`._flow`, driven here with blocking or async I/O;
* a failed refresh never drops a token that is still valid;
* an API 401 on a request that carried our token drops it, gets a new one and
  replays the request once; the token goes only to ``api_hosts`` (:mod:`._hosts`).
"""

from __future__ import annotations

import asyncio
import copy
import functools
import logging
import math
import os
import threading
import time
import urllib.parse
import weakref
from collections.abc import AsyncGenerator, Callable, Generator
from types import TracebackType
from typing import Any, NoReturn

import httpx

from ._flow import ReadCredentials, RefreshResult, refresh_flow, run_async, run_sync
from ._hosts import HostAllowlist, is_loopback
from ._retry import RetryPolicy
from ._single_flight import BACKGROUND_RETRY_INTERVAL, CachedToken, Flight, TokenCell
from ._stats import AuthenticatorStats, AuthEvent, StatsRecorder
from ._token import Phase
from ._token_http import TokenHttp
from .credentials import Credentials
from .errors import ConfigError, N3XTCredsError
from .sources.base import CredentialSource, describe_source

__all__ = ["Authenticator"]

logger = logging.getLogger("n3xt_creds")

_DEFAULT_RETRY = RetryPolicy()
_DEFAULT_API_HOSTS = ("*.n3xt.io",)


class _NeedToken:
    """Yielded by the auth flow when it needs the current token (sync or async alike)."""


_NEED_TOKEN = _NeedToken()


class Authenticator(httpx.Auth):
    """Turns a credential source into a cached, refreshed N3XT bearer token.

    ``source`` is any :class:`~n3xt_creds.CredentialSource`, read at each refresh.
    ``token_url`` must be https (plain http only to loopback). A token is refreshed
    ``refresh_margin`` seconds before it expires, without making callers wait;
    ``timeout`` bounds each token request and ``retry`` the retries of one refresh.
    The token is attached only to https URLs whose host matches ``api_hosts``.
    ``clock`` (monotonic seconds), ``http_client`` and ``async_http_client`` can be
    injected; clients you pass are used as they are and never closed by us.
    ``on_event`` receives an :class:`~n3xt_creds.AuthEvent` for metrics.

    Use it as ``httpx.Client(auth=authenticator)`` / ``httpx.AsyncClient(auth=...)``,
    or call :meth:`get_token`/:meth:`headers` (:meth:`aget_token`/:meth:`aheaders`).
    One instance is safe to share across threads, asyncio tasks and event loops, and
    survives ``os.fork()``. It refuses to be pickled. Close it (or use ``with``) to
    release its HTTP connection.
    """

    def __init__(
        self,
        source: CredentialSource,
        *,
        token_url: str,
        refresh_margin: float = 300.0,
        timeout: float = 10.0,
        api_hosts: tuple[str, ...] | list[str] = _DEFAULT_API_HOSTS,
        retry: RetryPolicy = _DEFAULT_RETRY,
        clock: Callable[[], float] = time.monotonic,
        http_client: httpx.Client | None = None,
        async_http_client: httpx.AsyncClient | None = None,
        on_event: Callable[[AuthEvent], object] | None = None,
    ) -> None:
        if not callable(getattr(source, "get_credentials", None)):
            raise ConfigError(
                f"source must be a credential source with a get_credentials() method, "
                f"not {type(source).__name__}",
                key="source",
            )
        self.source = source
        self.token_url = _checked_token_url(token_url)
        self.refresh_margin = _positive_seconds("refresh_margin", refresh_margin)
        self.timeout = _positive_seconds("timeout", timeout)
        self._hosts = HostAllowlist(api_hosts)
        self.api_hosts = self._hosts.patterns
        if not isinstance(retry, RetryPolicy):
            raise ConfigError(
                f"retry must be a RetryPolicy, not {type(retry).__name__}", key="retry"
            )
        self.retry = retry
        if not callable(clock):
            raise ConfigError("clock must be a callable returning monotonic seconds", key="clock")
        self._clock = clock
        for name, client, kind in (
            ("http_client", http_client, httpx.Client),
            ("async_http_client", async_http_client, httpx.AsyncClient),
        ):
            if client is not None and not isinstance(client, kind):
                raise ConfigError(
                    f"{name} must be an {kind.__module__}.{kind.__name__}, "
                    f"not {type(client).__name__}",
                    key=name,
                )
        self._http = TokenHttp(
            timeout=self.timeout, http_client=http_client, async_http_client=async_http_client
        )
        self._stats = StatsRecorder(on_event)
        self._cell = TokenCell()
        self._last_good: Credentials | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # strong refs: asyncio keeps weak ones
        self._threads: list[threading.Thread] = []
        _LIVE.add(self)

    # -- tokens, the hot path first -------------------------------------------------

    def get_token(self) -> str:
        """Return a valid access token (no ``Bearer`` prefix), refreshing if needed."""
        cached = self._cell.current
        if cached is not None and self._clock() < cached.stale_at:
            return cached.raw
        return self._cached_sync().raw

    async def aget_token(self) -> str:
        """Return a valid access token without blocking the event loop."""
        cached = self._cell.current
        if cached is not None and self._clock() < cached.stale_at:
            return cached.raw
        return (await self._cached_async()).raw

    def headers(self) -> dict[str, str]:
        """``{"Authorization": "Bearer <token>"}`` for clients other than httpx/requests.

        The caller is responsible for sending it only to N3XT hosts.
        """
        return {"Authorization": self._current_sync().header}

    async def aheaders(self) -> dict[str, str]:
        """Async :meth:`headers`."""
        cached = self._cell.current
        if cached is None or self._clock() >= cached.stale_at:
            cached = await self._cached_async()
        return {"Authorization": cached.header}

    def invalidate(self) -> None:
        """Drop the cached token: the next call gets a new one."""
        if self._cell.drop():
            self._stats.record(AuthEvent("token_invalidated", reason="invalidate"))
            logger.info("Cached N3XT token dropped (invalidate() called)")

    def _current_sync(self) -> CachedToken:
        cached = self._cell.current
        if cached is not None and self._clock() < cached.stale_at:
            return cached
        return self._cached_sync()

    async def _current_async(self) -> CachedToken:
        cached = self._cell.current
        if cached is not None and self._clock() < cached.stale_at:
            return cached
        return await self._cached_async()

    # -- the slow path: stale, expired, or no token ---------------------------------

    def _cached_sync(self) -> CachedToken:
        while True:
            now = self._clock()
            cached = self._cell.current
            if cached is not None:
                phase = cached.token.phase(now)
                if phase is Phase.FRESH:
                    return cached
                if phase is Phase.STALE:
                    flight = self._cell.begin_background(now)
                    if flight is not None:
                        self._start_background_thread(flight)
                    return cached
            cached, flight, leader = self._cell.join(now)
            if cached is not None:
                return cached
            assert flight is not None
            if leader:
                self._refresh_sync(flight)
            else:
                _refuse_to_block_own_loop(flight)
                flight.wait()
            settled = self._settle(flight)
            if settled is not None:
                return settled

    async def _cached_async(self) -> CachedToken:
        loop = asyncio.get_running_loop()
        while True:
            now = self._clock()
            cached = self._cell.current
            if cached is not None:
                phase = cached.token.phase(now)
                if phase is Phase.FRESH:
                    return cached
                if phase is Phase.STALE:
                    flight = self._cell.begin_background(now, loop=loop)
                    if flight is not None:
                        self._start_task(loop, flight)
                    return cached
            cached, flight, leader = self._cell.join(now, loop=loop)
            if cached is not None:
                return cached
            assert flight is not None
            if leader:
                # The refresh runs as its own task: cancelling this caller (a timeout
                # around one request) must not abort the refresh everyone waits for.
                self._start_task(loop, flight)
            await flight.wait_async()
            settled = self._settle(flight)
            if settled is not None:
                return settled

    def _settle(self, flight: Flight) -> CachedToken | None:
        """What a caller gets once ``flight`` is over; ``None``: look again (leader cancelled)."""
        if flight.error is not None:
            return self._after_failed_refresh(flight.error)
        if flight.token is None:
            return None
        # Re-check the cache: it may hold an even newer token, or none (a 401 dropped it).
        current = self._cell.still_valid(self._clock())
        if current is not None:
            return current
        # A token already past its expired-phase start (its answer took almost its whole
        # life) is still better than starting another refresh at once, while it is valid.
        return flight.token if self._clock() < flight.token.token.expires_at else None

    def _after_failed_refresh(self, error: Exception) -> CachedToken:
        still_valid = self._cell.still_valid(self._clock())
        if still_valid is not None:
            logger.warning(
                "Token refresh failed (%s); keeping the current token, valid for %.0f s more",
                type(error).__name__,
                still_valid.token.expires_at - self._clock(),
            )
            return still_valid
        raise _copy_for_this_caller(error)

    # -- leading a refresh ------------------------------------------------------------

    def _new_flow(self) -> Generator[Any, object, RefreshResult]:
        return refresh_flow(
            token_url=self.token_url,
            refresh_margin=self.refresh_margin,
            policy=self.retry,
            last_good=self._last_good,
            clock=self._clock,
        )

    def _read_credentials(self, action: ReadCredentials) -> Credentials:
        # Sources read their backend at every call, so the invalid_client re-read
        # ("bypass any cache") needs nothing special here.
        return self.source.get_credentials()

    async def _aread_credentials(self, action: ReadCredentials) -> Credentials:
        # Sources are synchronous (hvac, boto3): never on the event loop.
        return await asyncio.to_thread(self._read_credentials, action)

    def _refresh_sync(self, flight: Flight) -> None:
        started = self._clock()
        try:
            result = run_sync(
                self._new_flow(),
                read=self._read_credentials,
                send=self._http.send,
                sleep=time.sleep,
            )
        except Exception as exc:
            self._refresh_failed(flight, exc, self._clock() - started)
        except BaseException:
            self._cell.finish(flight, None, None, now=self._clock())
            raise
        else:
            self._refresh_succeeded(flight, result)

    async def _refresh_async(self, flight: Flight) -> None:
        started = self._clock()
        try:
            async with self._http.async_client() as client:
                result = await run_async(
                    self._new_flow(),
                    read=self._aread_credentials,
                    send=functools.partial(self._http.asend, client),
                    sleep=asyncio.sleep,
                )
        except Exception as exc:
            self._refresh_failed(flight, exc, self._clock() - started)
        except BaseException:
            self._cell.finish(flight, None, None, now=self._clock())
            raise
        else:
            self._refresh_succeeded(flight, result)

    def _refresh_succeeded(self, flight: Flight, result: RefreshResult) -> None:
        self._last_good = result.credentials
        self._cell.finish(flight, CachedToken(result.token), None, now=self._clock())
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
        self._cell.finish(flight, None, error, now=self._clock())
        if flight.background:
            logger.warning(
                "Background token refresh failed (%s); the current token stays in use and "
                "the next background attempt waits %g s",
                type(error).__name__,
                BACKGROUND_RETRY_INTERVAL,
            )
        self._stats.record(
            AuthEvent(
                "refresh_failed",
                duration=duration,
                error=type(error).__name__,
                request_id=getattr(error, "request_id", None),
                background=flight.background,
            )
        )

    def _start_background_thread(self, flight: Flight) -> None:
        thread = threading.Thread(
            target=self._refresh_sync, args=(flight,), name="n3xt-creds-refresh", daemon=True
        )
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _start_task(self, loop: asyncio.AbstractEventLoop, flight: Flight) -> None:
        task = loop.create_task(self._refresh_async(flight), name="n3xt-creds-refresh")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- httpx.Auth -------------------------------------------------------------------

    def _flow(self, request: httpx.Request) -> Generator[Any, Any, None]:
        """The auth flow, once for sync and async: yields requests or ``_NEED_TOKEN``."""
        url = request.url
        if not self._hosts.allows(url.scheme, url.host):
            yield request
            return
        cached: CachedToken = yield _NEED_TOKEN
        request.headers["Authorization"] = cached.header
        response: httpx.Response = yield request
        if response.status_code != 401:
            return
        # After a cross-origin redirect the 401 came from a request without our token.
        if response.request.headers.get("Authorization") != cached.header:
            return
        self._api_rejected(cached.header)
        if not isinstance(request.stream, httpx.ByteStream):
            logger.info("API answered 401; not replaying: the request body was a stream")
            return
        fresh: CachedToken = yield _NEED_TOKEN
        request.headers["Authorization"] = fresh.header
        self._stats.record(AuthEvent("request_replayed"))
        yield request

    def _allows_url(self, url: str) -> bool:
        """Allowlist check for adapters that have the URL as a string."""
        parts = urllib.parse.urlsplit(url)
        return self._hosts.allows(parts.scheme, parts.hostname or "")

    def _api_rejected(self, header: str) -> None:
        """The API said 401 to ``header``: drop it unless someone already replaced it."""
        if self._cell.drop(header):
            self._stats.record(AuthEvent("token_invalidated", reason="api_401"))
            logger.info("The API rejected the cached token (401); getting a new one")

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """httpx calls this for ``httpx.Client`` requests."""
        flow = self._flow(request)
        step = next(flow)
        while True:
            if step is _NEED_TOKEN:
                step = flow.send(self._current_sync())
                continue
            response = yield step
            try:
                step = flow.send(response)
            except StopIteration:
                return

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """httpx calls this for ``httpx.AsyncClient`` requests (the loop never blocks)."""
        flow = self._flow(request)
        step = next(flow)
        while True:
            if step is _NEED_TOKEN:
                step = flow.send(await self._current_async())
                continue
            response = yield step
            try:
                step = flow.send(response)
            except StopIteration:
                return

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """The httpx generator interface (sync token retrieval)."""
        return (yield from self.sync_auth_flow(request))

    # -- introspection, lifecycle -------------------------------------------------------

    @property
    def stats(self) -> AuthenticatorStats:
        """A snapshot of the counters (refreshes, failures, latency, token age, phase)."""
        cached = self._cell.current
        now = self._clock()
        recorder = self._stats
        return AuthenticatorStats(
            refreshes=recorder.refreshes,
            failures=recorder.failures,
            last_refresh_seconds=recorder.last_refresh_seconds,
            token_age=None if cached is None else cached.token.age(now),
            phase=None if cached is None else cached.token.phase(now).value,
            replays=recorder.replays,
        )

    def close(self) -> None:
        """Wait (bounded) for a background refresh, then close the HTTP client we own."""
        for thread in self._threads:
            thread.join(self.timeout + 1.0)
        self._http.close()

    async def aclose(self) -> None:
        """Async :meth:`close`: awaits this loop's refresh tasks, never blocks the loop."""
        loop = asyncio.get_running_loop()
        mine = [task for task in self._tasks if task.get_loop() is loop]
        if mine:
            await asyncio.wait(mine, timeout=self.timeout + 1.0)
        await asyncio.to_thread(self.close)

    def __enter__(self) -> Authenticator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Authenticator:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        cached = self._cell.current
        if cached is None:
            state = "phase=None"
        else:
            phase = cached.token.phase(self._clock()).value
            state = f"phase={phase}, token_fingerprint={cached.token.access_token.fingerprint}"
        return (
            f"Authenticator(token_url={self.token_url!r}, "
            f"source={describe_source(self.source)!r}, {state})"
        )

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError(
            "n3xt_creds.Authenticator refuses to be pickled or copied: it holds locks, HTTP "
            "connections and a secret. Build one per process (from the same settings) instead."
        )

    def _reset_after_fork(self) -> None:
        self._cell.reset_after_fork()
        self._http.reset_after_fork()
        self._stats.reset_after_fork()
        self._hosts.reset_after_fork()
        self._tasks = set()  # they belong to the parent's event loops
        self._threads = []


# -- fork safety --------------------------------------------------------------------------

_LIVE: weakref.WeakSet[Authenticator] = weakref.WeakSet()


def _reset_all_after_fork() -> None:
    # Only the forking thread exists in the child: a lock another thread held, or a
    # refresh it was leading, would never be released or finished there.
    for authenticator in list(_LIVE):
        authenticator._reset_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_all_after_fork)


# -- helpers ------------------------------------------------------------------------------


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


def _checked_token_url(token_url: object) -> str:
    if not isinstance(token_url, str) or not token_url.strip():
        raise ConfigError(
            f"token_url must be the N3XT token endpoint URL, got {token_url!r}", key="token_url"
        )
    try:
        url = httpx.URL(token_url.strip())
    except httpx.InvalidURL as exc:
        raise ConfigError(
            f"token_url {token_url!r} is not a valid URL: {exc}", key="token_url"
        ) from None
    if url.userinfo:
        raise ConfigError(
            "token_url must not contain a user name or password; credentials come from the source",
            key="token_url",
        )
    if not url.host or url.scheme not in ("https", "http"):
        raise ConfigError(
            f"token_url must be an https URL like https://authn.alpha.n3xt.io/v1/public/"
            f"<project-id>/oauth2/token, got {token_url!r}",
            key="token_url",
        )
    if url.scheme == "http" and not is_loopback(url.host):
        raise ConfigError(
            f"token_url {token_url!r} uses plain http: the client secret would cross the "
            "network in clear. Use https (plain http is allowed only to localhost/127.0.0.1/::1)",
            key="token_url",
        )
    return str(url)


def _positive_seconds(name: str, value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigError(f"{name} must be a positive number of seconds, got {value!r}", key=name)
    return float(value)
