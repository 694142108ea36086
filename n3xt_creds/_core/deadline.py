"""One absolute deadline for a whole token request, however slowly its answer trickles.

httpx's timeouts bound each network operation (connect, every read, every write), not
the request: a server that sends its status line, headers or body one byte every
0.2 s never trips a 1 s read timeout, and a 100-byte answer then takes 20 s. The
refresh flow gives every send a ``time_left``; this module makes it a hard bound.

* Sync: :func:`bound_by_deadline` wraps the network backend of an ``httpx.Client``'s
  httpcore pools (the same seam the transport uses to track its sockets) so that
  every connect, read and write is capped at what is left of the deadline set by
  :func:`send_deadline` (a context variable: per thread, per task), and fails with
  httpcore's own timeout once it has passed — httpx maps it to ``httpx.ReadTimeout``
  and httpcore drops the half-read connection.
* Async: :func:`bounded` runs the whole exchange under ``asyncio.wait_for``;
  cancelling it makes httpcore close that connection.

An ``http_client`` the application passes keeps its own transport: there the sync
deadline caps each read (``timeout``) and :func:`check_deadline` between the chunks of
the body bounds a trickled body, but not trickled headers. The async path is bounded
for any client.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Awaitable, Iterator
from typing import Any, TypeVar

import httpx

from .aio import asyncio

__all__ = ["bound_by_deadline", "bounded", "check_deadline", "send_deadline"]

T = TypeVar("T")

# The monotonic time by which the token request in progress must be over (None: no bound).
_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "n3xt_creds_send_deadline", default=None
)
_PASSED = "the token refresh deadline passed while the request was still in progress"
# A send the flow starts gets at least this long (as the per-read timeout does): the
# flow only starts one before its deadline, and an injected clock may have jumped.
_MIN_SECONDS = 0.05


@contextlib.contextmanager
def send_deadline(seconds: float | None) -> Iterator[None]:
    """Bound every network operation inside the block to ``seconds`` from now, in total."""
    if seconds is None:
        yield
        return
    token = _DEADLINE.set(time.monotonic() + max(seconds, _MIN_SECONDS))
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def check_deadline() -> None:
    """Raise ``httpx.ReadTimeout`` if the deadline of :func:`send_deadline` has passed.

    Called between the chunks of an answer: with an ``http_client`` of the
    application's (whose transport we leave alone) it still bounds a trickled body.
    """
    deadline = _DEADLINE.get()
    if deadline is not None and time.monotonic() >= deadline:
        raise httpx.ReadTimeout(_PASSED)


def _capped(timeout: float | None, kind: str) -> float | None:
    """``timeout`` cut to what is left of the deadline; raise once nothing is left."""
    deadline = _DEADLINE.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        import httpcore  # noqa: PLC0415 - loaded with the pool that calls this

        raise getattr(httpcore, kind)(_PASSED)
    return left if timeout is None else min(timeout, left)


class _DeadlineStream:
    """An httpcore network stream whose every read and write stops at the deadline."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        data: bytes = self._inner.read(max_bytes, _capped(timeout, "ReadTimeout"))
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _capped(timeout, "WriteTimeout"))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> _DeadlineStream:
        upgraded = self._inner.start_tls(
            ssl_context, server_hostname, _capped(timeout, "ConnectTimeout")
        )
        return _DeadlineStream(upgraded)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend:
    """Wraps an httpcore sync network backend: its connections honour the deadline."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def connect_tcp(
        self, host: str, port: int, timeout: float | None = None, **kwargs: Any
    ) -> _DeadlineStream:
        stream = self._inner.connect_tcp(host, port, _capped(timeout, "ConnectTimeout"), **kwargs)
        return _DeadlineStream(stream)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, **kwargs: Any
    ) -> _DeadlineStream:
        stream = self._inner.connect_unix_socket(path, _capped(timeout, "ConnectTimeout"), **kwargs)
        return _DeadlineStream(stream)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def bound_by_deadline(client: httpx.Client) -> None:
    """Make every pool of ``client`` (direct and proxy mounts) honour :func:`send_deadline`.

    httpx offers no public way to choose its httpcore pool's network backend: this
    replaces ``_pool._network_backend`` (present from httpx 0.18 to 0.28, httpcore 1.x);
    the trickle tests fail loudly if a release stops using it.
    """
    transports: list[object] = [getattr(client, "_transport", None)]
    transports.extend(getattr(client, "_mounts", {}).values())
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if backend is not None and not isinstance(backend, _DeadlineBackend):
            pool._network_backend = _DeadlineBackend(backend)  # type: ignore[union-attr]


async def bounded(awaitable: Awaitable[T], seconds: float | None) -> T:
    """Await ``awaitable`` for at most ``seconds`` in total; past it, ``httpx.ReadTimeout``.

    Cancelling an httpx request makes httpcore close its connection, so nothing of
    the abandoned answer is read later or reused.
    """

    if seconds is None:
        return await awaitable
    try:
        return await asyncio.wait_for(awaitable, max(seconds, _MIN_SECONDS))
    except asyncio.TimeoutError:
        # Raised below, outside this block: nothing secret hangs off its context.
        pass
    raise httpx.ReadTimeout(_PASSED)
