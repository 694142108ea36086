"""One token per host or fleet: how a refresh consults a shared cache, written once.

:meth:`SharedTokens.obtain` is a generator, like the refresh flow of
:mod:`n3xt_creds._core.flow`: it yields what to do — call the store
(:class:`CallStore`), wait (:class:`Wait`), or run this process's own refresh
(:data:`REFRESH`) — and the sync or async driver of :mod:`.drive` does it. It runs
only where the refresher would otherwise send a token request (a cold start, an
expired token, a stale-window refresh): the hot path never comes here.

The protocol, per refresh:

1. one store call: the entry if there is one, else try to take the refresh lease;
2. a usable entry (it decrypts, and its token is not expired — fresh for a
   stale-window refresh) is adopted: no token request;
3. the lease holder refreshes, publishes the sealed token and releases the lease
   (one store call); a failed refresh releases the lease;
4. everyone else re-reads with jitter until a token appears, or takes the lease
   when its holder is gone (its ``PX`` ran out / its process died), or at the
   deadline refreshes on its own.

Any store failure (down, slow, full, garbage, a directory that is not ours) makes
this refresh fall back to the process's own single-flight refresh, logs one
warning per condition, counts it, and keeps the store out of the way for a few
seconds: a call never fails because of the shared cache.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import logging
import random
import secrets
import threading
import time
from collections.abc import Callable, Generator
from typing import Any, NamedTuple

from ...credentials import Credentials
from ...errors import ConfigError
from ..aio import asyncio
from ..cache import CachedToken
from ..flow import RefreshResult
from ..logfields import fields
from ..token import Phase
from .base import (
    EntryKey,
    EntryProblem,
    Lookup,
    StoreError,
    TokenCache,
    entry_key,
    open_entry,
    seal_entry,
)

__all__ = [
    "REFRESH",
    "CallStore",
    "SharedCacheStats",
    "SharedStep",
    "SharedTokens",
    "Wait",
    "drive_async",
    "drive_sync",
    "shared_tokens_for",
]

logger = logging.getLogger("n3xt_creds")

#: After a store failure, the store is left alone this long (then tried again).
STORE_BACKOFF = 5.0
# Waiters re-read the store with full jitter around a delay that starts small (the
# lease holder's token request takes a round trip to N3XT) and grows to a cap.
_FIRST_POLL = 0.01
_MAX_POLL = 0.05
_MAX_POLL_BACKGROUND = 0.5
# A store that wakes its waiters on publish (Redis pub/sub) is re-read less often: the
# re-read only notices a lease that ran out (its holder died) or a lost message.
_MAX_WAIT_NOTIFIED = 0.25


class CallStore(NamedTuple):
    """Driver: run ``call()`` (async drivers: in a worker thread) and send back its result."""

    call: Callable[[], object]


class Wait(NamedTuple):
    """Driver: sleep ``seconds``, then send back ``None``."""

    seconds: float


class _Refresh:
    """Driver: run this process's own refresh flow; send back its RefreshResult or throw its error."""

    def __repr__(self) -> str:
        return "REFRESH"


REFRESH = _Refresh()
SharedStep = CallStore | Wait | _Refresh

_FAILED = object()  # a store call that failed (already warned about and counted)


def _ignore(hit: bool) -> None:
    """The default :attr:`SharedTokens.on_lookup`: nobody is told."""


class SharedCacheStats(NamedTuple):
    """Counters of one authenticator's use of its shared cache (``Authenticator.shared_cache_stats``).

    ``adopted``: tokens taken from the store instead of requested; ``led``: refreshes
    this process ran holding the lease (and published); ``waited``: re-reads while
    another process held the lease; ``fallbacks``: refreshes done on our own because
    the store failed or the wait ran out; ``ignored_entries``: unusable entries
    (garbage, foreign, expired); ``failures``: store failures by condition.
    """

    adopted: int
    led: int
    waited: int
    fallbacks: int
    ignored_entries: int
    published: int
    dropped: int
    failures: dict[str, int]


def shared_tokens_for(
    cache: object,
    *,
    token_url: str,
    refresh_margin: float,
    clock: Callable[[], float],
    timeout: float,
    deadline: float,
    refresh_jitter: float = 0.0,
) -> SharedTokens | None:
    """The Authenticator's ``shared_cache`` argument, checked, as a :class:`SharedTokens`.

    The lease outlives one token request (``timeout``) by a little: a holder killed
    mid-refresh delays the others by at most that long. Waiters give up waiting at
    the refresh ``deadline`` and refresh on their own.
    """
    if cache is None:
        return None
    if not isinstance(cache, TokenCache):
        raise ConfigError(
            "shared_cache must be a FileTokenCache, a RedisTokenCache or another TokenCache "
            f"(lookup/publish/release/drop/describe), not {type(cache).__name__}",
            key="shared_cache",
        )
    try:
        # Loaded now, with the application, not inside its first token call.
        importlib.import_module("cryptography.hazmat.primitives.ciphers.aead")
        importlib.import_module("cryptography.hazmat.primitives.kdf.hkdf")
    except ImportError:
        raise ConfigError(
            "shared_cache needs the cryptography package to encrypt entries: "
            "pip install 'n3xt-creds[cryptography]'",
            key="shared_cache",
        ) from None
    return SharedTokens(
        cache,
        token_url=token_url,
        refresh_margin=refresh_margin,
        clock=clock,
        lease_seconds=min(deadline, timeout + 2.0),
        wait_seconds=deadline,
        refresh_jitter=refresh_jitter,
    )


class SharedTokens:
    """An authenticator's view of its shared cache: keys, lease, waits, failures, counters."""

    def __init__(
        self,
        cache: TokenCache,
        *,
        token_url: str,
        refresh_margin: float,
        clock: Callable[[], float],
        lease_seconds: float,
        wait_seconds: float,
        wall_clock: Callable[[], float] = time.time,
        refresh_jitter: float = 0.0,
    ) -> None:
        self.cache = cache
        self._token_url = token_url
        self._refresh_margin = refresh_margin
        self._clock = clock
        self._wall_clock = wall_clock
        self.lease_seconds = lease_seconds
        self.wait_seconds = wait_seconds
        # Each process draws its own stale point for an adopted token, as for one it
        # requested: the first to go stale leads the refresh, the later ones find the
        # new token already there (one store read, no wait).
        self._refresh_jitter = refresh_jitter
        self._lock = threading.Lock()
        self._key: tuple[Credentials, EntryKey] | None = None
        # The entry that holds our current token: what a compare-and-delete drops.
        self._current: tuple[str, str, bytes] | None = None  # (header, key name, entry)
        self._down_until = -1.0
        self._warned: set[str] = set()
        self._counts: dict[str, int] = dict.fromkeys(
            ("adopted", "led", "waited", "fallbacks", "ignored_entries", "published", "dropped"), 0
        )
        self._failures: dict[str, int] = {}
        self._rng = random.Random()  # noqa: S311 - poll jitter, not cryptography
        # The store can wake waiters when a token is published (RedisTokenCache.wait).
        self._notified = callable(getattr(cache, "wait", None))
        # Told the outcome of each refresh that consulted the store: True when its
        # token came from the store (telemetry's shared-level cache lookups).
        self.on_lookup: Callable[[bool], object] = _ignore

    # -- the refresh -----------------------------------------------------------------

    def obtain_sync(
        self,
        credentials: Credentials | None,
        *,
        background: bool,
        current: CachedToken | None,
        refresh: Callable[[], RefreshResult],
    ) -> RefreshResult:
        """:meth:`obtain` driven with blocking I/O; ``refresh`` runs our own flow."""
        steps = self.obtain(credentials, background=background, current=current)
        return drive_sync(steps, refresh)

    async def obtain_async(
        self,
        credentials: Credentials | None,
        *,
        background: bool,
        current: CachedToken | None,
        refresh: Callable[[], Any],
    ) -> RefreshResult:
        """:meth:`obtain` driven without blocking the loop; ``refresh`` is awaitable."""
        steps = self.obtain(credentials, background=background, current=current)
        return await drive_async(steps, refresh)

    def obtain(
        self, credentials: Credentials | None, *, background: bool, current: CachedToken | None
    ) -> Generator[SharedStep, Any, RefreshResult]:
        """A token for this refresh: adopted from the store, or refreshed (led or on our own).

        ``credentials`` name the entry (the last good pair, or a fresh read; ``None``
        when the source could not be read: refresh on our own). A result with
        ``attempts == 0`` was adopted: no token request was made.
        """
        key = self._key_for(credentials)
        if key is None or self._store_resting():
            return (yield from self._refresh_alone(publish=False))
        assert credentials is not None
        owner = secrets.token_hex(16)
        unless = self._current_entry(current) if background else None
        started = self._clock()
        delay = _FIRST_POLL
        skip_wait = False
        while True:
            found = yield CallStore(
                functools.partial(
                    self._guard,
                    "lookup",
                    self.cache.lookup,
                    key.name,
                    owner=owner,
                    lease_seconds=self.lease_seconds,
                    unless=unless,
                )
            )
            if not isinstance(found, Lookup):
                return (yield from self._refresh_alone(publish=False))
            if found.entry is not None and found.entry != unless:
                adopted = self._adopt(key, found.entry, background=background)
                if adopted is not None:
                    if found.leased:
                        self._release(key.name, owner)
                    self.on_lookup(True)
                    return RefreshResult(adopted.token, credentials, attempts=0, elapsed=0.0)
                unless = found.entry
                if not found.leased and not skip_wait:
                    skip_wait = True  # look again at once: we may get the lease now
                    continue
            if found.leased:
                self.on_lookup(False)
                return (yield from self._lead(key, owner))
            skip_wait = False
            if self._clock() - started >= self.wait_seconds:
                self._fail(
                    "lease_wait_timeout",
                    f"no token appeared within {self.wait_seconds:g} s while another "
                    "process held the refresh lease",
                )
                self.on_lookup(False)
                return (yield from self._refresh_alone(publish=True))
            self._count("waited")
            seconds = delay * (0.5 + self._rng.random())
            if self._notified:
                yield CallStore(functools.partial(self._wait_for_publish, key.name, seconds))
                cap = _MAX_POLL_BACKGROUND if background else _MAX_WAIT_NOTIFIED
            else:
                yield Wait(seconds)
                cap = _MAX_POLL_BACKGROUND if background else _MAX_POLL
            delay = min(delay * 1.5, cap)

    def _lead(self, key: EntryKey, owner: str) -> Generator[SharedStep, Any, RefreshResult]:
        self._count("led")
        try:
            result: RefreshResult = yield REFRESH
        except BaseException:
            # Let the next process in at once rather than when the lease runs out.
            self._release(key.name, owner)
            raise
        publish_key = self._key_for(result.credentials) or key
        if publish_key.name != key.name:  # the secret was rotated under us
            self._release(key.name, owner)
            owner_for_publish: str | None = None
        else:
            owner_for_publish = owner
        yield from self._publish(publish_key, result, owner_for_publish)
        return result

    def _refresh_alone(self, *, publish: bool) -> Generator[SharedStep, Any, RefreshResult]:
        self._count("fallbacks")
        result: RefreshResult = yield REFRESH
        if publish and not self._store_resting():
            key = self._key_for(result.credentials)
            if key is not None:
                yield from self._publish(key, result, None)
        return result

    def _publish(
        self, key: EntryKey, result: RefreshResult, owner: str | None
    ) -> Generator[SharedStep, Any, None]:
        now = self._clock()
        token = result.token
        entry = seal_entry(key, token, now=now, wall_now=self._wall_clock())
        # The store keeps it no longer than until the token's expired phase: an
        # upper bound only, the expiry inside the entry rules.
        ttl = max(1.0, token.expired_at - now)
        done = yield CallStore(
            functools.partial(
                self._guard,
                "publish",
                self.cache.publish,
                key.name,
                entry,
                ttl_seconds=ttl,
                owner=owner,
            )
        )
        self._remember(f"Bearer {token.value()}", key.name, entry)
        if done is not _FAILED:
            self._count("published")

    def _adopt(self, key: EntryKey, entry: bytes, *, background: bool) -> CachedToken | None:
        now = self._clock()
        try:
            sealed = open_entry(
                key,
                entry,
                now=now,
                wall_now=self._wall_clock(),
                refresh_margin=self._refresh_margin,
                stale_jitter=self._rng.uniform(0.0, self._refresh_jitter),
            )
        except EntryProblem as problem:
            self._count("ignored_entries")
            if problem.condition != "entry_expired":
                self._warn_once(
                    problem.condition,
                    f"an entry under our key is {_ENTRY_WORDS[problem.condition]}: ignored "
                    "(it is replaced by the next token we get)",
                )
            return None
        phase = sealed.token.phase(now)
        if phase is Phase.EXPIRED or (background and phase is not Phase.FRESH):
            return None
        cached = CachedToken(sealed.token)
        self._remember(cached.header, key.name, entry)
        self._count("adopted")
        return cached

    # -- dropping a rejected token -------------------------------------------------------

    def drop(self, header: str | None) -> bool:
        """Delete the shared entry if it still holds the token sent as ``header``
        (``None``: our current token). Best effort, one store call at most."""
        with self._lock:
            current = self._current
        if current is None or (header is not None and current[0] != header):
            return False
        if self._store_resting():
            return False
        dropped = self._guard("drop", self.cache.drop, current[1], current[2])
        with self._lock:
            if self._current is current:
                self._current = None
        if dropped is True:
            self._count("dropped")
            return True
        return False

    # -- pieces ------------------------------------------------------------------------

    def _key_for(self, credentials: Credentials | None) -> EntryKey | None:
        if credentials is None:
            return None
        with self._lock:
            if self._key is not None and _same_credentials(self._key[0], credentials):
                return self._key[1]
        key = entry_key(self._token_url, credentials)
        with self._lock:
            self._key = (credentials, key)
        return key

    def _current_entry(self, current: CachedToken | None) -> bytes | None:
        with self._lock:
            mine = self._current
        if current is None or mine is None or mine[0] != current.header:
            return None
        return mine[2]

    def _remember(self, header: str, name: str, entry: bytes) -> None:
        with self._lock:
            self._current = (header, name, entry)

    def _wait_for_publish(self, name: str, seconds: float) -> None:
        """Sleep until the store says a token was published, at most ``seconds``; a store
        that cannot notify is polled from then on (one warning), never a fallback."""
        try:
            self.cache.wait(name, seconds)  # type: ignore[attr-defined]
        except Exception as error:
            self._notified = False
            condition = getattr(error, "condition", type(error).__name__)
            self._warn_once(
                "wait_" + str(condition),
                "cannot subscribe to publish notifications (pub/sub refused or failed); "
                "waiters re-read the store instead",
            )
            time.sleep(seconds)

    def _release(self, name: str, owner: str) -> None:
        self._guard("release", self.cache.release, name, owner)

    def _guard(
        self, operation: str, call: Callable[..., object], *args: Any, **kwargs: Any
    ) -> object:
        """Run one store call; a failure is counted, warned about once, and returned as _FAILED."""
        if self._store_resting():
            return _FAILED
        try:
            result = call(*args, **kwargs)
        except StoreError as error:
            self._fail(error.condition, error.detail, rest=True)
            return _FAILED
        except Exception as error:
            # A third-party store's own exception: its class name only (a message could hold a URL).
            self._fail(
                f"{operation}_{type(error).__name__}",
                f"{operation} raised {type(error).__name__}",
                rest=True,
            )
            return _FAILED
        if self._warned and operation == "lookup":
            self._recovered()
        return result

    def _store_resting(self) -> bool:
        return time.monotonic() < self._down_until

    def _fail(self, condition: str, detail: str, *, rest: bool = False) -> None:
        with self._lock:
            self._failures[condition] = self._failures.get(condition, 0) + 1
            if rest:
                self._down_until = time.monotonic() + STORE_BACKOFF
        self._warn_once(condition, detail)

    def _warn_once(self, condition: str, detail: str) -> None:
        with self._lock:
            if condition in self._warned:
                return
            self._warned.add(condition)
        logger.warning(
            "Shared token cache (%s) problem, %s: %s. This process gets its own token "
            "instead; no call fails because of it (logged once per condition).",
            self.cache.describe(),
            condition,
            detail,
            extra=fields("shared_cache_failure", result=condition),
        )

    def _recovered(self) -> None:
        with self._lock:
            if not any(c for c in self._warned if not c.startswith("entry_")):
                return
            self._warned = {c for c in self._warned if c.startswith("entry_")}
        logger.info(
            "Shared token cache (%s) answers again",
            self.cache.describe(),
            extra=fields("shared_cache_recovered"),
        )

    def _count(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    @property
    def stats(self) -> SharedCacheStats:
        """A snapshot of the counters."""
        with self._lock:
            return SharedCacheStats(**self._counts, failures=dict(self._failures))

    def reset_after_fork(self) -> None:
        """In a forked child: own lock; the parent's warnings and back-off do not carry over."""
        self._lock = threading.Lock()
        self._down_until = -1.0
        with contextlib.suppress(AttributeError):
            self.cache.reset_after_fork()  # type: ignore[attr-defined]


_ENTRY_WORDS = {
    "entry_garbage": "not a sealed n3xt_creds entry (garbage, or written by something else)",
    "entry_foreign": "sealed with another key (another client secret, or tampered with)",
}


def _same_credentials(a: Credentials, b: Credentials) -> bool:
    return a.client_id == b.client_id and a.client_secret == b.client_secret


# -- drivers: the only sync/async twins of the shared cache --------------------------------


def drive_sync(
    steps: Generator[SharedStep, Any, RefreshResult], refresh: Callable[[], RefreshResult]
) -> RefreshResult:
    """Run :meth:`SharedTokens.obtain` with blocking I/O; ``refresh`` runs our own flow."""
    reply: object = None
    error: Exception | None = None
    with contextlib.closing(steps):  # a cancelled refresh still releases its lease
        while True:
            try:
                step = steps.throw(error) if error is not None else steps.send(reply)
            except StopIteration as stop:
                result: RefreshResult = stop.value
                return result
            reply, error = None, None
            if isinstance(step, CallStore):
                reply = step.call()
            elif isinstance(step, Wait):
                time.sleep(step.seconds)
            else:
                try:
                    reply = refresh()
                except Exception as exc:
                    error = exc


async def drive_async(
    steps: Generator[SharedStep, Any, RefreshResult],
    refresh: Callable[[], Any],
) -> RefreshResult:
    """Run :meth:`SharedTokens.obtain` without blocking the loop: store calls in a
    worker thread, waits with ``asyncio.sleep``; ``refresh`` returns an awaitable."""

    reply: object = None
    error: Exception | None = None
    with contextlib.closing(steps):  # a cancelled refresh still releases its lease
        while True:
            try:
                step = steps.throw(error) if error is not None else steps.send(reply)
            except StopIteration as stop:
                result: RefreshResult = stop.value
                return result
            reply, error = None, None
            if isinstance(step, CallStore):
                reply = await asyncio.to_thread(step.call)
            elif isinstance(step, Wait):
                await asyncio.sleep(step.seconds)
            else:
                try:
                    reply = await refresh()
                except Exception as exc:
                    error = exc
