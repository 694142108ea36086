"""Authenticator: credentials in, a valid bearer token on every request out.

It is an ``httpx.Auth`` (sync and async clients), and offers ``get_token()``,
``headers()`` and their async twins for any other client. Behaviour (DESIGN.md,
"Behaviour the authenticator guarantees"):

* a token is *fresh*, then *stale* (a refresh starts in the background, nobody
  waits), then *expired* (callers wait for one refresh) — see :mod:`._core.token`;
* one refresh at a time however many threads, tasks and event loops ask
  (:mod:`._core.cache`); the refresh protocol itself (retries, ``invalid_client``,
  last-good credentials) is :mod:`._core.flow`, driven with blocking or async I/O by
  :mod:`._core.refresher`;
* a failed refresh never drops a token that is still valid;
* an API 401 on a request that carried our token drops it, gets a new one and
  replays the request once; the token goes only to ``api_hosts`` (:mod:`._core.hosts`).
"""

from __future__ import annotations

import logging
import os
import time
import urllib.parse
import weakref
from collections.abc import AsyncGenerator, Callable, Generator
from types import TracebackType
from typing import Any, NoReturn

import httpx

from ._core.arguments import checked_token_url, positive_seconds
from ._core.cache import CachedToken
from ._core.hosts import HostAllowlist, is_loopback
from ._core.refresher import Refresher
from ._core.retry import RetryPolicy
from ._core.shared.coordinator import SharedCacheStats, shared_tokens_for
from ._core.stats import AuthenticatorStats, AuthEvent, StatsRecorder
from ._core.telemetry import Telemetry
from ._core.transport import TokenHttp
from .errors import ConfigError
from .sources.base import CredentialSource, describe_source

__all__ = ["Authenticator"]

logger = logging.getLogger("n3xt_creds")

_DEFAULT_RETRY = RetryPolicy()
_DEFAULT_API_HOSTS = ("*.n3xt.io",)


class _NeedToken:
    """Yielded by the auth flow when it needs the current token (sync or async alike)."""


_NEED_TOKEN = _NeedToken()

# Set on a requests.PreparedRequest we re-sent after a 401, so it is never replayed twice.
_REPLAYED = "_n3xt_creds_replayed"


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
    With ``opentelemetry-api`` installed (extra ``otel``) the slow path records
    OpenTelemetry metrics and spans (docs/observability.md) through the global
    providers, or ``meter_provider``/``tracer_provider``; ``telemetry_client_id=True``
    adds the client_id to the token metrics (off: it multiplies series, and may be
    confidential).
    ``shared_cache`` (a :class:`~n3xt_creds.FileTokenCache` or
    :class:`~n3xt_creds.RedisTokenCache`) shares one token between the processes of a
    host or a fleet; the in-process token stays the first level, and a failing store
    only makes this process refresh on its own (docs/shared-cache.md).

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
        meter_provider: Any = None,
        tracer_provider: Any = None,
        telemetry_client_id: bool = False,
        shared_cache: object = None,
    ) -> None:
        if not callable(getattr(source, "get_credentials", None)):
            raise ConfigError(
                f"source must be a credential source with a get_credentials() method, "
                f"not {type(source).__name__}",
                key="source",
            )
        self.source = source
        self.token_url = checked_token_url(token_url)
        self.refresh_margin = positive_seconds("refresh_margin", refresh_margin)
        self.timeout = positive_seconds("timeout", timeout)
        # Loopback gets the token only when listed, or when the token endpoint itself is
        # loopback (local testing): a sidecar on localhost never sees a production token.
        self._hosts = HostAllowlist(api_hosts, loopback=is_loopback(httpx.URL(self.token_url).host))
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
        self._telemetry = Telemetry(
            token_url=self.token_url,
            source=source,
            clock=clock,
            meter_provider=meter_provider,
            tracer_provider=tracer_provider,
            record_client_id=bool(telemetry_client_id),
        )
        self._stats = StatsRecorder(on_event, self._telemetry)
        self.shared_cache = shared_cache
        self._refresher = Refresher(
            source,
            token_url=self.token_url,
            refresh_margin=self.refresh_margin,
            retry=retry,
            clock=clock,
            http=self._http,
            stats=self._stats,
            telemetry=self._telemetry,
            shared=shared_tokens_for(
                shared_cache,
                token_url=self.token_url,
                refresh_margin=self.refresh_margin,
                clock=clock,
                timeout=self.timeout,
                deadline=retry.deadline,
            ),
        )
        # The hot path reads the cached token straight from the cell: one attribute hop less.
        self._cell = self._refresher.cell
        _LIVE.add(self)

    # -- tokens, the hot path first -------------------------------------------------

    def get_token(self) -> str:
        """Return a valid access token (no ``Bearer`` prefix), refreshing if needed."""
        cached = self._cell.current
        if cached is not None and self._clock() < cached.stale_at:
            return cached.raw
        return self._refresher.cached_sync().raw

    async def aget_token(self) -> str:
        """Return a valid access token without blocking the event loop."""
        cached = self._cell.current
        if cached is not None and self._clock() < cached.stale_at:
            return cached.raw
        return (await self._refresher.cached_async()).raw

    def headers(self) -> dict[str, str]:
        """``{"Authorization": "Bearer <token>"}`` for clients other than httpx/requests.

        The caller is responsible for sending it only to N3XT hosts.
        """
        return {"Authorization": self._current_sync().header}

    async def aheaders(self) -> dict[str, str]:
        """Async :meth:`headers`."""
        return {"Authorization": (await self._current_async()).header}

    def invalidate(self) -> None:
        """Drop the cached token: the next call gets a new one."""
        cached = self._cell.current
        if self._cell.drop():
            self._stats.record(AuthEvent("token_invalidated", reason="invalidate"))
            logger.info("Cached N3XT token dropped (invalidate() called)")
            if cached is not None:
                self._drop_shared(cached.header)

    def _current_sync(self) -> CachedToken:
        cached = self._cell.current
        if cached is not None and self._clock() < cached.stale_at:
            return cached
        return self._refresher.cached_sync()

    async def _current_async(self) -> CachedToken:
        cached = self._cell.current
        if cached is not None and self._clock() < cached.stale_at:
            return cached
        return await self._refresher.cached_async()

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
            self._telemetry.api_unauthorized(replayed=False)
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
            self._drop_shared(header)

    def _drop_shared(self, header: str) -> None:
        """Drop the shared cache's entry too, if it still holds that token (compare-and-delete):
        one token request per fleet after a revocation, and never a newer token dropped."""
        shared = self._refresher.shared
        if shared is not None:
            shared.drop(header)

    # -- requests (duck-typed: this module never imports requests) --------------------

    def __call__(self, request: Any) -> Any:
        """``requests`` auth protocol: ``session.auth = authenticator`` works as it is.

        Attaches the token to requests whose URL the ``api_hosts`` allow (others pass
        through untouched) and a response hook that, on an API 401 to our token, drops
        it (if still current), gets a new one and replays the request once — unless its
        body was a stream or file, which cannot be sent twice. ``requests`` strips the
        ``Authorization`` header on a redirect to another host and does not re-apply
        this auth, so the token never follows a redirect off its origin. httpx never
        calls this: it recognises the Authenticator as an ``httpx.Auth`` first.
        """
        if not self._allows_url(request.url or ""):
            return request
        request.headers["Authorization"] = self._current_sync().header
        request.register_hook("response", self._replay_requests_401)
        return request

    def _replay_requests_401(self, response: Any, **kwargs: Any) -> Any:
        request = response.request
        if response.status_code != 401 or getattr(request, _REPLAYED, False):
            return response
        sent = request.headers.get("Authorization")
        if sent is None:  # a redirect answered this one: it never carried our token
            return response
        self._api_rejected(sent)
        if request.body is not None and not isinstance(request.body, bytes | str):
            logger.info("API answered 401; not replaying: the request body was a stream")
            return response
        fresh = self._current_sync().header
        # Free the connection before sending again (as requests' own digest auth does).
        _ = response.content
        response.close()
        replay = request.copy()
        replay.headers["Authorization"] = fresh
        setattr(replay, _REPLAYED, True)
        self._stats.record(AuthEvent("request_replayed"))
        if response.connection is None:  # pragma: no cover - requests always sets it
            return response
        second = response.connection.send(replay, **kwargs)
        second.history.append(response)
        second.request = replay
        return second

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
    def shared_cache_stats(self) -> SharedCacheStats | None:
        """Counters of the shared cache's use by this authenticator (``None`` without one):
        tokens adopted from it, refreshes led, waits, fallbacks, failures by condition."""
        shared = self._refresher.shared
        return None if shared is None else shared.stats

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
        self._refresher.wait_for_background(self.timeout + 1.0)
        self._http.close()
        self._telemetry.close()

    async def aclose(self) -> None:
        """Async :meth:`close`: awaits this loop's refresh tasks, never blocks the loop."""
        import asyncio  # noqa: PLC0415 - loaded by async callers only; keeps `import n3xt_creds` cheap

        await self._refresher.wait_for_tasks(self.timeout + 1.0)
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
        self._refresher.reset_after_fork()
        self._http.reset_after_fork()
        self._stats.reset_after_fork()
        self._hosts.reset_after_fork()


# -- fork safety --------------------------------------------------------------------------

_LIVE: weakref.WeakSet[Authenticator] = weakref.WeakSet()


def _reset_all_after_fork() -> None:
    # Only the forking thread exists in the child: a lock another thread held, or a
    # refresh it was leading, would never be released or finished there.
    for authenticator in list(_LIVE):
        authenticator._reset_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_all_after_fork)
