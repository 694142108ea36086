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
* static stability: a refresh ends within its deadline, a final failure is
  remembered for a jittered cool-down (callers get it at once, no token request),
  and refresh points carry jitter (:mod:`._core.cache`);
* an API 401 on a request that carried our token drops it, gets a new one and
  replays the request once — but the replacement of a rejected token is not itself
  replaced before a cool-down: then the 401 goes to the caller. The token goes only
  to ``api_hosts`` (:mod:`._core.hosts`).
"""

from __future__ import annotations

import logging
import os
import time
import urllib.parse
import weakref
from collections.abc import AsyncGenerator, Callable, Generator
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn

import httpx

from ._core.aio import asyncio
from ._core.arguments import checked_token_url, positive_seconds
from ._core.cache import ApiVerdict, CachedToken
from ._core.hosts import HostAllowlist, is_loopback
from ._core.logfields import fields
from ._core.refresher import REFRESH_JITTER, Refresher
from ._core.retry import RetryPolicy
from ._core.stats import AuthenticatorStats, AuthEvent, StatsRecorder
from ._core.telemetry import Telemetry
from ._core.transport import TokenHttp
from .errors import ConfigError
from .sources.base import CredentialSource, describe_source
from .sources.chain import ChainSource
from .sources.env import EnvSource
from .sources.file import FileSource

if TYPE_CHECKING:
    from ._core.shared.coordinator import SharedCacheStats, SharedTokens

__all__ = ["Authenticator"]

logger = logging.getLogger("n3xt_creds")

_DEFAULT_RETRY = RetryPolicy()
_DEFAULT_API_HOSTS = ("*.n3xt.io",)


class _NeedToken:
    """Yielded by the auth flow when it needs the current token (sync or async alike)."""


_NEED_TOKEN = _NeedToken()


class _DropShared(NamedTuple):
    """Yielded by the auth flow: drop the shared cache's entry if it still holds ``header``
    (a store call: blocking in the sync driver, in a worker thread in the async one)."""

    header: str


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
    ``refresh_jitter`` (a fraction of the token lifetime, default 0.05) moves each
    token's refresh point early by a random amount up to that much, so that many
    instances started together do not refresh in step; 0 makes refresh points exact
    (tests that step a clock to a phase boundary).

    A refresh that fails for good (rejected credentials after the re-read, retries
    exhausted, the source down with nothing to fall back on) is *remembered*: for a
    jittered cool-down that grows with each failure in a row, up to 30 s, callers get
    the same error at once without a token request (a token still valid keeps being
    served). A success, :meth:`invalidate`, or new credentials at the source end it.

    Use it as ``httpx.Client(auth=authenticator)`` / ``httpx.AsyncClient(auth=...)``,
    or call :meth:`get_token`/:meth:`headers` (:meth:`aget_token`/:meth:`aheaders`).
    One instance is safe to share across threads, asyncio tasks and event loops, and
    survives ``os.fork()``. It refuses to be pickled. Token requests go through one
    connection pool per process (per event loop for async) shared by every
    authenticator; close it (or use ``with``) when done: the last one closes the pool.
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
        refresh_jitter: float = REFRESH_JITTER,
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
        if (
            isinstance(refresh_jitter, bool)
            or not isinstance(refresh_jitter, int | float)
            or not 0.0 <= refresh_jitter <= 0.25
        ):
            raise ConfigError(
                f"refresh_jitter must be a fraction of the token lifetime from 0 to 0.25, "
                f"got {refresh_jitter!r}",
                key="refresh_jitter",
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
            shared=None
            if shared_cache is None
            else _shared_tokens(
                shared_cache,
                token_url=self.token_url,
                refresh_margin=self.refresh_margin,
                clock=clock,
                timeout=self.timeout,
                deadline=retry.deadline,
                refresh_jitter=float(refresh_jitter),
            ),
            refresh_jitter=float(refresh_jitter),
            cheap_source=_cheap_to_read(source),
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

    def invalidate(self, token: str | None = None) -> bool:
        """Drop the cached token, so the next call gets a new one.

        Without ``token`` (an operator's "start over"): drop whatever is cached and end
        a remembered failure and the API 401 damping; the next call makes a token
        request at once. Returns True.

        With ``token`` (the one your request carried, when the API answered it 401):
        drop it only if it is still the cached one, so a late 401 never drops a newer
        token that another caller just fetched. Returns True when retrying with a new
        token makes sense (this call dropped it, or a newer one already replaced it)
        and False when the token was kept: it is the replacement of a token the API
        refused less than a cool-down ago, so the API refuses every token (wrong
        project, scope or audience?) and fetching another would not help — hand the
        401 to your caller.
        """
        if token is None:
            cached = self._cell.current
            dropped = self._cell.drop()
            memory = self._cell.forget_failures()
            if dropped:
                self._stats.record(AuthEvent("token_invalidated", reason="invalidate"))
                logger.info(
                    "Cached N3XT token dropped (invalidate() called)",
                    extra=fields("token_invalidated", trigger="invalidate"),
                )
                if cached is not None:
                    self._drop_shared(cached.header)
            if memory is not None:
                self._stats.record(AuthEvent("cooldown_ended", reason="invalidate"))
                logger.info(
                    "invalidate() ended the remembered token refresh failure (%s): the "
                    "next call requests a token",
                    type(memory.error).__name__,
                    extra=fields("cooldown_ended", trigger="invalidate", result="invalidate"),
                )
            return True
        if not isinstance(token, str):
            raise TypeError(
                f"invalidate(token) takes the access token string, not {type(token).__name__}"
            )
        header = f"Bearer {token}"
        verdict = self._rejected(header, reason="invalidate")
        if verdict.dropped:
            self._drop_shared(header)
        return verdict.replay

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
            self._api_accepted(cached.header)
            return
        # After a cross-origin redirect the 401 came from a request without our token.
        if response.request.headers.get("Authorization") != cached.header:
            return
        verdict = self._rejected(cached.header, reason="api_401")
        if verdict.dropped and self._refresher.shared is not None:
            # A store call: the async driver runs it in a worker thread, never on the loop.
            yield _DropShared(cached.header)
        if not verdict.replay:
            self._telemetry.api_unauthorized(replayed=False)
            return
        if not isinstance(request.stream, httpx.ByteStream):
            logger.info(
                "API answered 401; not replaying: the request body was a stream",
                extra=fields("api_401_not_replayed", trigger="api_401", result="passed_through"),
            )
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

    def _api_accepted(self, header: str | None) -> None:
        """The API answered ``header`` with something else than 401 (httpx flow,
        RequestsAuth): a later rejection starts the 401 damping over."""
        if self._cell.api_strikes and header:  # one attribute read on the hot path
            self._cell.api_accepted(header)

    def _api_rejected(self, header: str) -> bool:
        """The API said 401 to ``header`` (requests, invalidate(token): blocking callers):
        drop it unless someone already replaced it, here and in the shared cache. True:
        replay with a new token; False: the API refuses the token that replaced a
        rejected one, pass its 401 on."""
        verdict = self._rejected(header, reason="api_401")
        if verdict.dropped:
            self._drop_shared(header)
        return verdict.replay

    def _rejected(self, header: str, *, reason: str) -> ApiVerdict:
        """The cell's verdict on a 401 to ``header``, counted and logged; the caller drops
        the shared cache's entry when ``dropped`` (blocking, or in a worker thread)."""
        verdict = self._cell.api_rejected(header, self._clock())
        if verdict.dropped:
            self._stats.record(AuthEvent("token_invalidated", reason=reason))
            logger.info(
                "The API rejected the cached token (401); getting a new one",
                extra=fields("api_401", trigger="api_401", result="replaced"),
            )
        elif verdict.passed_through:
            self._stats.record(
                AuthEvent("api_401_passed_through", reason=reason, failures=verdict.strikes)
            )
            logger.warning(
                "The API refused (401) the token that replaced a token it refused moments "
                "ago: N3XT accepts the credentials but the API refuses their tokens (wrong "
                "project, scope or audience?). The 401 goes to the caller; no new token is "
                "requested for %.1f s",
                max(0.0, self._cell.api_keep_until - self._clock()),
                extra=fields("api_401_passed_through", trigger="api_401", result="passed_through"),
            )
        return verdict

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
        if response.status_code != 401:
            self._api_accepted(request.headers.get("Authorization"))
            return response
        if getattr(request, _REPLAYED, False):
            return response
        sent = request.headers.get("Authorization")
        if sent is None:  # a redirect answered this one: it never carried our token
            return response
        if not self._api_rejected(sent):
            return response  # the API refuses every token: its 401 goes to the caller
        if request.body is not None and not isinstance(request.body, bytes | str):
            logger.info(
                "API answered 401; not replaying: the request body was a stream",
                extra=fields("api_401_not_replayed", trigger="api_401", result="passed_through"),
            )
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
            if isinstance(step, _DropShared):
                self._drop_shared(step.header)
                step = flow.send(None)
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
            if isinstance(step, _DropShared):
                await asyncio.to_thread(self._drop_shared, step.header)
                step = flow.send(None)
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
            cooldowns_started=recorder.cooldowns_started,
            remembered_failures_served=recorder.remembered_failures_served,
            api_401s_passed_through=recorder.api_401s_passed_through,
            cooldown_remaining=self._cell.cooldown_remaining(now),
        )

    def close(self) -> None:
        """Wait (bounded) for a background refresh, then stop using the shared token pool
        (closed with its last user; a client you passed is never closed)."""
        self._refresher.wait_for_background(self.timeout + 1.0)
        self._http.close()
        self._telemetry.close()

    async def aclose(self) -> None:
        """Async :meth:`close`: awaits this loop's refresh tasks, never blocks the loop."""

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


def _cheap_to_read(source: object) -> bool:
    """Environment variables and mounted files cost microseconds to read: during a
    remembered failure they are re-read at every call, so a fixed secret is picked up
    at once. Other sources (Vault, AWS, plugins) are re-read once per cool-down step."""
    if isinstance(source, (EnvSource, FileSource)):
        return True
    if isinstance(source, ChainSource):
        return all(_cheap_to_read(member) for member in source.sources)
    return False


def _shared_tokens(cache: object, **options: Any) -> SharedTokens | None:
    """The shared cache's coordinator; its module loads only when an app uses one."""
    from ._core.shared.coordinator import shared_tokens_for  # noqa: PLC0415 - see docstring

    return shared_tokens_for(cache, **options)


# -- fork safety --------------------------------------------------------------------------

_LIVE: weakref.WeakSet[Authenticator] = weakref.WeakSet()


def _reset_all_after_fork() -> None:
    # Only the forking thread exists in the child: a lock another thread held, or a
    # refresh it was leading, would never be released or finished there.
    for authenticator in list(_LIVE):
        authenticator._reset_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_all_after_fork)
