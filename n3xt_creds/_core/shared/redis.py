"""RedisTokenCache: one token for a whole fleet, in Redis or Valkey (redis-py).

Keys share a hash tag, ``n3xt-creds:{<name>}:token`` and ``...:lease``, so the
Lua scripts that touch both run on one Redis Cluster slot. Every operation is one
round trip (a script):

* ``lookup``: ``GET`` the entry; when it is absent (or is the entry the caller
  found unusable) ``SET lease owner NX PX`` in the same script;
* ``publish``: ``SET entry PX ttl``, release the caller's lease, and ``PUBLISH`` on
  the key's channel, which wakes the waiters (:meth:`RedisTokenCache.wait`) at once;
* ``release`` / ``drop``: compare-and-delete (the lease if it is still ours, the
  entry if it still holds the token we were told to drop).

Connections use short socket timeouts (default 50 ms) and no client-side retries:
a slow or dead Redis costs a caller about one timeout before it falls back to its
own refresh. ``redis`` is imported when a RedisTokenCache is built (never by
``import n3xt_creds``).
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import threading
import time
import urllib.parse
from collections.abc import Mapping
from typing import Any

from ..._environ import REDIS_URL
from ...errors import ConfigError
from .base import MAX_ENTRY_BYTES, Lookup, StoreError

__all__ = ["DEFAULT_TIMEOUT", "RedisTokenCache"]

#: Seconds each Redis operation (and connecting) may take before the caller falls back.
DEFAULT_TIMEOUT = 0.05

_PREFIX = "n3xt-creds"
_SCHEMES = ("redis", "rediss", "unix")

_LOOKUP = """
local entry = false
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind == 'string' then entry = redis.call('GET', KEYS[1]) end
if entry and entry ~= ARGV[3] then return {0, entry} end
local got = redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2])
if got then return {1, entry or ''} end
return {0, entry or ''}
"""
_PUBLISH = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if ARGV[3] ~= '' and redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
redis.pcall('PUBLISH', ARGV[4], '1')
return 1
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_DROP = """
if redis.call('TYPE', KEYS[1])['ok'] == 'string' and redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisTokenCache:
    """A token cache shared by a fleet of processes and hosts, in Redis or Valkey.

    Pass it as ``Authenticator(..., shared_cache=RedisTokenCache())`` (or set
    ``[default.shared_cache] backend = "redis"``) so that every pod and worker using
    one client makes one token request per token lifetime, cold starts included,
    and a revoked token costs one request per fleet. The URL comes from ``url``, else
    from the environment variable ``url_var`` (default ``REDIS_URL``) — never from a
    settings file, since it may carry a password. ``redis://``, ``rediss://`` (TLS)
    and ``unix://`` URLs are accepted; for Sentinel or Cluster, build the client with
    redis-py (``Sentinel(...).master_for(name)``, ``RedisCluster.from_url(...)``) and
    pass ``client=``. Give such a client short timeouts too: ``timeout`` (seconds,
    default 0.05) applies only to the client built here, with no client-side retries.
    Entries are encrypted with a key derived from the client secret, so the store
    alone reveals nothing. If Redis is down, slow or full, each process refreshes on
    its own: no call fails because of it. Needs ``pip install 'n3xt-creds[redis]'``.
    """

    backend = "redis"

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        url_var: str = REDIS_URL,
        timeout: float = DEFAULT_TIMEOUT,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        owner = "RedisTokenCache"
        if client is None and importlib.util.find_spec("redis") is None:
            raise ConfigError(
                "needs the redis package: pip install 'n3xt-creds[redis]'",
                key="backend",
                owner=owner,
            )
        if importlib.util.find_spec("cryptography") is None:
            raise ConfigError(
                "needs the cryptography package: pip install 'n3xt-creds[redis]'",
                key="backend",
                owner=owner,
            )
        if (
            not isinstance(timeout, int | float)
            or isinstance(timeout, bool)
            or not 0 < timeout <= 10
        ):
            raise ConfigError(
                f"timeout must be a number of seconds in (0, 10], got {timeout!r}",
                key="timeout",
                owner=owner,
            )
        self.timeout = float(timeout)
        self.url_var = url_var
        self._client = client
        self._url: str | None = None
        self._where = "client given"
        if client is None:
            if url is None:
                env = os.environ if environ is None else environ
                url = env.get(url_var, "").strip()
                if not url:
                    raise ConfigError(
                        f"no Redis URL: set the environment variable {url_var} (like "
                        "redis://:password@redis.example:6379/0) or pass url=",
                        key="url_var",
                        owner=owner,
                    )
                origin = f"the variable {url_var}"
            else:
                origin = "url"
            self._url = url
            self._where = _describe_url(url, origin, owner)
        self._lock = threading.Lock()
        self._scripts: dict[str, Any] = {}
        self._wait_lock = threading.Lock()
        self._pubsub: Any = None
        self._channels: set[str] = set()
        if client is None:
            importlib.import_module("redis")  # with the application, not in its first token call

    # -- TokenCache ----------------------------------------------------------------------

    def lookup(self, key: str, *, owner: str, lease_seconds: float, unless: bytes | None) -> Lookup:
        """GET the entry, or SET NX PX the lease when absent or ``unless``: one script."""
        reply = self._run(
            "lookup",
            [_entry(key), _lease(key)],
            [owner, max(1, int(lease_seconds * 1000)), unless or b""],
        )
        if not isinstance(reply, list) or len(reply) != 2 or not isinstance(reply[1], bytes):
            raise StoreError("redis_garbage", "the lookup script answered something unexpected")
        entry = reply[1] or None
        if entry is not None and len(entry) > MAX_ENTRY_BYTES:
            entry = entry[: MAX_ENTRY_BYTES + 1]  # opened as garbage, never parsed whole
        return Lookup(entry, reply[0] == 1)

    def publish(self, key: str, entry: bytes, *, ttl_seconds: float, owner: str | None) -> None:
        """SET the entry with a PX upper bound and release ``owner``'s lease: one script."""
        self._run(
            "publish",
            [_entry(key), _lease(key)],
            [entry, max(1, int(ttl_seconds * 1000)), owner or "", _channel(key)],
        )

    def release(self, key: str, owner: str) -> None:
        """Compare-and-delete the lease."""
        self._run("release", [_lease(key)], [owner])

    def drop(self, key: str, entry: bytes) -> bool:
        """Compare-and-delete the entry."""
        return bool(self._run("drop", [_entry(key)], [entry]) == 1)

    def wait(self, key: str, seconds: float) -> None:
        """Block until a token is published under ``key`` or ``seconds`` pass (pub/sub).

        The first call subscribes and returns at once (the caller then re-reads, so a
        token published meanwhile is not missed); later calls sleep in the kernel until
        the publish script's message arrives. One connection per process, kept.
        """
        if not self._wait_lock.acquire(blocking=False):
            time.sleep(seconds)  # another thread of this process waits on the connection
            return
        try:
            self._call(lambda client: self._wait_on(client, _channel(key), seconds))
        finally:
            self._wait_lock.release()

    def _wait_on(self, client: Any, channel: str, seconds: float) -> None:
        pubsub = self._pubsub
        if pubsub is None:
            pubsub = self._pubsub = client.pubsub(ignore_subscribe_messages=True)
        if channel not in self._channels:
            pubsub.subscribe(channel)
            self._channels.add(channel)
            return
        message = pubsub.get_message(timeout=seconds)
        while message is not None:  # drain: one wake-up per wait is enough
            message = pubsub.get_message(timeout=0)

    def reset_after_fork(self) -> None:
        """In a forked child: the parent's subscription connection is not ours (not closed:
        that would shut the parent's socket down)."""
        self._pubsub = None
        self._channels = set()
        self._wait_lock = threading.Lock()

    def describe(self) -> str:
        """Host and port (never the password)."""
        return f"redis {self._where}"

    def __repr__(self) -> str:
        return f"RedisTokenCache({self._where})"

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError(
            "n3xt_creds.RedisTokenCache refuses to be pickled: its URL may hold a password. "
            "Build one per process (from the same settings or REDIS_URL) instead."
        )

    # -- redis-py ------------------------------------------------------------------------

    def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        script = self._script(name)
        return self._call(lambda client: script(keys=keys, args=args, client=client))

    def _script(self, name: str) -> Any:
        script = self._scripts.get(name)
        if script is None:
            client = self._redis()
            text = {"lookup": _LOOKUP, "publish": _PUBLISH, "release": _RELEASE, "drop": _DROP}[
                name
            ]
            script = self._scripts[name] = client.register_script(text)
        return script

    def _call(self, operation: Any) -> Any:
        import redis.exceptions as errors  # noqa: PLC0415 - heavy, loaded on use

        client = self._redis()
        try:
            return operation(client)
        except errors.TimeoutError:
            raise StoreError(
                "redis_timeout", f"no answer within {self.timeout * 1000:g} ms (slow or stopped)"
            ) from None
        except errors.AuthenticationError:
            raise StoreError(
                "redis_auth", "authentication failed (check the URL's password)"
            ) from None
        except errors.ConnectionError:
            raise StoreError(
                "redis_unreachable", "cannot connect (down, or wrong host/port)"
            ) from None
        except errors.ResponseError as error:
            # A write refused at maxmemory: OutOfMemoryError, or inside a script the
            # "Error running script ... OOM ..." wrapping of it.
            if "OOM" in str(error) or type(error).__name__ == "OutOfMemoryError":
                raise StoreError(
                    "redis_full", "Redis is out of memory (maxmemory reached)"
                ) from None
            word = str(error).split(" ", 1)[0][:20] or "ERR"
            raise StoreError(f"redis_{word.lower()}", f"Redis answered {word}") from None
        except errors.RedisError as error:
            raise StoreError("redis_error", f"redis-py raised {type(error).__name__}") from None
        except OSError as error:
            raise StoreError("redis_unreachable", f"{type(error).__name__}") from None

    def _redis(self) -> Any:
        if self._client is not None:
            return self._client
        with self._lock:
            if self._client is None:
                import redis  # noqa: PLC0415 - heavy, loaded on use
                from redis.backoff import NoBackoff  # noqa: PLC0415
                from redis.retry import Retry  # noqa: PLC0415

                assert self._url is not None
                # No CLIENT SETINFO on connect: two round trips fewer for a cold process
                # (redis-py >= 7 spells it driver_info=None, older ones lib_name/lib_version).
                parameters = inspect.signature(redis.Redis.__init__).parameters
                quiet: dict[str, Any] = (
                    {"driver_info": None}
                    if "driver_info" in parameters
                    else {"lib_name": None, "lib_version": None}
                )
                self._client = redis.Redis.from_url(
                    self._url,
                    socket_timeout=self.timeout,
                    socket_connect_timeout=self.timeout,
                    retry=Retry(NoBackoff(), 0),
                    retry_on_timeout=False,
                    health_check_interval=0,
                    **quiet,
                )
            return self._client


def _entry(key: str) -> str:
    return f"{_PREFIX}:{{{key}}}:token"


def _lease(key: str) -> str:
    return f"{_PREFIX}:{{{key}}}:lease"


def _channel(key: str) -> str:
    return f"{_PREFIX}:{{{key}}}:published"


def _describe_url(url: object, origin: str, owner: str) -> str:
    """``host=...`` for messages and repr; refuses what redis-py would not take. Never quotes the URL."""
    if not isinstance(url, str):
        raise ConfigError(f"{origin} must be a string URL", key="url", owner=owner)
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        raise ConfigError(
            f"{origin} is not a valid Redis URL (its port is wrong)", key="url", owner=owner
        ) from None
    if parts.scheme not in _SCHEMES:
        raise ConfigError(
            f"{origin} must be a redis://, rediss:// or unix:// URL (for Sentinel or "
            "Cluster pass client= built with redis-py)",
            key="url",
            owner=owner,
        )
    if parts.scheme == "unix":
        return f"socket={parts.path!r}"
    if not parts.hostname:
        raise ConfigError(f"{origin} has no host", key="url", owner=owner)
    return f"host={parts.hostname}:{port or 6379}"
