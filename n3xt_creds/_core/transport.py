"""Sending token requests over httpx, for the sync and async refresh drivers.

* **One connection pool per process.** Sync refreshes of every Authenticator that was
  not given a client share one ``httpx.Client``, created on first use and closed
  when the last authenticator using it is closed. At most :data:`POOL_MAX_CONNECTIONS`
  requests are in flight at once (more wait for a slot, within the request timeout)
  and at most :data:`POOL_KEEPALIVE` connections stay open between requests: a
  thousand tenants hold a handful of descriptors, not a thousand, and a cold start of
  all of them never nears the descriptor limit. A client the caller injects is used
  as it is and never closed by us.
* **Async** refreshes share one ``httpx.AsyncClient`` per event loop (an async client
  belongs to the loop it first ran on), with the same bound; it is closed on its loop
  when the loop shuts down (``asyncio.run()`` and ``asyncio.Runner`` finalize async
  generators, see :class:`_LoopPools`). The first-use work of async HTTP in a process
  (importing httpcore, anyio and h11, loading the CA bundle into a TLS context: 15-30
  ms) runs once in a worker thread, never on the event loop. The TLS context is built
  once per process and shared by every client we create (an ``SSLContext`` is safe to
  share).
* **Bounded answers.** A body is read as a stream and reading stops at
  :data:`~n3xt_creds._core.token.MAX_BODY_BYTES`, counted both on the wire and after
  decompression (gzip/deflate are decoded here, in bounded steps): a 200 MB body or
  a gzip bomb costs at most about that much memory, never the whole thing.
* **Fork.** Every socket our pools open is remembered (weakly). In a forked child
  each one is closed — only the child's copy of the descriptor: no shutdown and no
  TLS close_notify is sent, so the parent's connections are untouched — and the
  child builds its own pool on first use.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import threading
import weakref
import zlib
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpx

from ..errors import AuthenticatorClosedError
from .aio import asyncio
from .deadline import bound_by_deadline, bounded, check_deadline, send_deadline
from .flow import SendTokenRequest
from .token import MAX_BODY_BYTES, TokenResponse

__all__ = ["POOL_KEEPALIVE", "POOL_MAX_CONNECTIONS", "BodyReader", "TokenHttp"]

#: Connections the process-wide token pool may open at once: a cold start of many
#: tenants proceeds this many token requests at a time (and never hits EMFILE).
POOL_MAX_CONNECTIONS = 100
#: Connections the pool keeps open between requests: what a process *holds*.
POOL_KEEPALIVE = 20

# The token request is authenticated by its body; a client the caller passes in may
# have an ``auth`` of its own (even this authenticator), which must not apply here.
_NO_AUTH = httpx.Auth()

# Never let a nearly exhausted deadline produce a zero or negative timeout.
_MIN_TIMEOUT = 0.05

# Token answers are tiny: we ask for them uncompressed. A server that compresses
# anyway is decoded here (gzip, deflate) with the same bound.
_ACCEPT_ENCODING = "identity"

_shared_ssl_context: ssl.SSLContext | None = None
_shared_ssl_lock = threading.Lock()


def _default_ssl_context() -> ssl.SSLContext:
    """httpx's default verifying TLS context, built once per process."""
    global _shared_ssl_context  # noqa: PLW0603 - a process-wide cache, guarded by its lock
    with _shared_ssl_lock:
        if _shared_ssl_context is None:
            _shared_ssl_context = httpx.create_ssl_context()
        return _shared_ssl_context


# -- bounded reading ----------------------------------------------------------------------


class BodyReader:
    """Collects a body chunk by chunk, stopping at ``limit`` bytes raw or decoded.

    Feed it the raw (still encoded) chunks; :meth:`feed` returns ``False`` when
    reading should stop. ``content`` is the decoded body read so far and ``problem``
    says why it is not the whole answer (too large, undecodable), or is ``None``.
    Sans-IO: the sync and async senders share it.
    """

    def __init__(self, content_encoding: str | None, limit: int = MAX_BODY_BYTES) -> None:
        self.limit = limit
        self.problem: str | None = None
        self.done = False
        self._raw = 0
        self._parts: list[bytes] = []
        self._size = 0
        self._first = True
        codings = [c.strip().lower() for c in (content_encoding or "").split(",")]
        codings = [c for c in codings if c and c != "identity"]
        self._coding = codings[0] if len(codings) == 1 else ("" if not codings else "several")
        self._decoder: Any = None
        if self._coding in ("gzip", "x-gzip"):
            self._decoder = zlib.decompressobj(zlib.MAX_WBITS | 16)
        elif self._coding == "deflate":
            self._decoder = zlib.decompressobj()
        elif self._coding:
            shown = "".join(
                c if c.isalnum() or c in "-_, " else "?" for c in content_encoding or ""
            )
            self.problem = (
                f"its body is encoded as {shown[:40]!r}, which a token answer never needs "
                "(we asked for identity)"
            )

    @property
    def content(self) -> bytes:
        return b"".join(self._parts)

    def too_large(self) -> None:
        self.problem = (
            f"its body is larger than {self.limit} bytes (reading stopped there): far too "
            "large for a token answer"
        )

    def feed(self, chunk: bytes) -> bool:
        """Take one raw chunk; ``False`` when reading must stop (see ``problem``)."""
        if self.problem is not None:
            return False
        self._raw += len(chunk)
        if self._raw > self.limit:
            self.too_large()
            return False
        if self._decoder is None:
            return self._keep(chunk)
        try:
            return self._inflate(chunk)
        except zlib.error:
            pass
        if self._coding == "deflate" and self._first:
            # Some servers send raw deflate without the zlib header (httpx accepts it too).
            self._decoder = zlib.decompressobj(-zlib.MAX_WBITS)
            try:
                return self._inflate(chunk)
            except zlib.error:
                pass
        self.problem = f"its {self._coding} body could not be decoded"
        return False

    def _inflate(self, data: bytes) -> bool:
        decoder = self._decoder
        while data and not decoder.eof:
            # max_length bounds each step's output: one raw chunk cannot inflate past the limit.
            out = decoder.decompress(data, self.limit - self._size + 1)
            self._first = False
            if not self._keep(out):
                return False
            data = decoder.unconsumed_tail
        return True

    def finish(self) -> None:
        """The body ended: flush the decoder (bounded)."""
        self.done = True
        if self.problem is None and self._decoder is not None:
            try:
                self._keep(self._decoder.flush(self.limit - self._size + 1))
            except zlib.error:
                self.problem = f"its {self._coding} body could not be decoded"

    def _keep(self, data: bytes) -> bool:
        if not data:
            return True
        self._size += len(data)
        if self._size > self.limit:
            self.too_large()
            return False
        self._parts.append(data)
        return True


def _reader_for(response: httpx.Response) -> BodyReader:
    """A reader for ``response``'s body; ``done`` when nothing is left to read."""
    if response.is_stream_consumed:
        # A transport that answered from memory (httpx.MockTransport, respx): the body
        # is already read and decoded; it still goes through the same checks.
        reader = BodyReader(None)
        reader.feed(response.content)
        reader.finish()
        reader.done = True
        return reader
    reader = BodyReader(response.headers.get("content-encoding"))
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > reader.limit:
        reader.too_large()  # refused before reading a byte
        reader.done = True
    return reader


def _token_response(response: httpx.Response, reader: BodyReader) -> TokenResponse:
    return TokenResponse(response.status_code, response.headers, reader.content, reader.problem)


# -- remembering our sockets (fork) -------------------------------------------------------

# Every socket a pool of ours opened and that is still alive: closed in a forked child.
_OUR_SOCKETS: weakref.WeakSet[Any] = weakref.WeakSet()


def _remember(stream: Any) -> Any:
    sock = stream.get_extra_info("socket")
    # asyncio hands out a TransportSocket view (no close(), no weakref): track the socket.
    inner = getattr(sock, "_sock", None)
    if isinstance(inner, socket.socket):
        sock = inner
    if sock is not None:
        with contextlib.suppress(TypeError):  # not weak-referenceable: nothing to track
            _OUR_SOCKETS.add(sock)
    return stream


class _TrackedStream:
    """An httpcore network stream whose TLS upgrade is remembered too."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        data: bytes = self._inner.read(max_bytes, timeout)
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, *args: Any, **kwargs: Any) -> _TrackedStream:
        return _TrackedStream(_remember(self._inner.start_tls(*args, **kwargs)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _TrackingBackend:
    """Wraps httpcore's sync network backend: every stream it opens is remembered."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def connect_tcp(self, *args: Any, **kwargs: Any) -> _TrackedStream:
        return _TrackedStream(_remember(self._inner.connect_tcp(*args, **kwargs)))

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> _TrackedStream:
        return _TrackedStream(_remember(self._inner.connect_unix_socket(*args, **kwargs)))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _AsyncTrackedStream:
    """The async twin of :class:`_TrackedStream`."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        data: bytes = await self._inner.read(max_bytes, timeout)
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(self, *args: Any, **kwargs: Any) -> _AsyncTrackedStream:
        return _AsyncTrackedStream(_remember(await self._inner.start_tls(*args, **kwargs)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _AsyncTrackingBackend:
    """The async twin of :class:`_TrackingBackend`."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    async def connect_tcp(self, *args: Any, **kwargs: Any) -> _AsyncTrackedStream:
        return _AsyncTrackedStream(_remember(await self._inner.connect_tcp(*args, **kwargs)))

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> _AsyncTrackedStream:
        stream = await self._inner.connect_unix_socket(*args, **kwargs)
        return _AsyncTrackedStream(_remember(stream))

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _track_sockets(client: httpx.Client | httpx.AsyncClient) -> None:
    """Make every pool of ``client`` (direct and proxy mounts) remember its sockets."""
    wrapper: Any = _TrackingBackend if isinstance(client, httpx.Client) else _AsyncTrackingBackend
    transports: list[object] = [getattr(client, "_transport", None)]
    transports.extend(getattr(client, "_mounts", {}).values())
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if backend is not None and not isinstance(backend, wrapper):
            pool._network_backend = wrapper(backend)  # type: ignore[union-attr]


def _pool_limits() -> httpx.Limits:
    return httpx.Limits(
        max_connections=POOL_MAX_CONNECTIONS, max_keepalive_connections=POOL_KEEPALIVE
    )


# -- the process-wide pool ----------------------------------------------------------------


class _SharedPool:
    """The process's token-endpoint client, shared by every TokenHttp that has no client
    of its own, and closed when the last of them is closed."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.client: httpx.Client | None = None
        self.users: weakref.WeakSet[TokenHttp] = weakref.WeakSet()
        # Requests past the connection limit wait here, not in httpcore's pool (whose
        # wait queue is costly when long: 1,000 queued requests took 10x longer).
        self.slots = threading.BoundedSemaphore(POOL_MAX_CONNECTIONS)

    def client_for(self, user: TokenHttp) -> httpx.Client:
        with self.lock:
            self.users.add(user)
            if self.client is None:
                client = httpx.Client(verify=_default_ssl_context(), limits=_pool_limits())
                # The whole request within the refresh deadline, trickles included.
                bound_by_deadline(client)
                _track_sockets(client)
                self.client = client
            return self.client

    def release(self, user: TokenHttp) -> None:
        with self.lock:
            self.users.discard(user)
            client = None
            if not self.users:
                client, self.client = self.client, None
        if client is not None:
            client.close()

    def after_fork_in_child(self) -> None:
        # The parent's client (its lock, its connections) is not ours to use or close.
        self.lock = threading.Lock()
        self.client = None
        self.users = weakref.WeakSet(list(self.users))
        self.slots = threading.BoundedSemaphore(POOL_MAX_CONNECTIONS)


_POOL = _SharedPool()


class _LoopPools:
    """One ``httpx.AsyncClient`` per running event loop, shared by every TokenHttp
    without a client of its own on that loop.

    An async client belongs to the loop it first ran on, so each loop gets its own,
    made on first use. It is closed on that loop when the loop shuts down: a
    suspended async generator (the *keeper*) is registered with the loop, and
    ``asyncio.run()``/``asyncio.Runner`` finalize async generators before closing the
    loop (``loop.shutdown_asyncgens()``), which runs the keeper's ``finally``. Entries
    of loops closed without that step are dropped on the next lookup.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_loop: dict[object, tuple[httpx.AsyncClient, Any]] = {}
        # Each pooled client's limit on requests in flight (see _SharedPool.slots).
        self.slots: weakref.WeakKeyDictionary[httpx.AsyncClient, Any] = weakref.WeakKeyDictionary()

    async def client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        with self.lock:
            entry = self.by_loop.get(loop)
            if entry is not None:
                return entry[0]
            for other in [other for other in self.by_loop if other.is_closed()]:  # type: ignore[attr-defined]
                del self.by_loop[other]
            client = httpx.AsyncClient(verify=_default_ssl_context(), limits=_pool_limits())
            _track_sockets(client)
            self.slots[client] = asyncio.Semaphore(POOL_MAX_CONNECTIONS)
            keeper = self._keeper(loop, client)
            self.by_loop[loop] = (client, keeper)
        await keeper.__anext__()  # registered with the loop from here on
        return client

    async def _keeper(self, loop: object, client: httpx.AsyncClient) -> AsyncIterator[None]:
        try:
            yield
        finally:
            with self.lock:
                if self.by_loop.get(loop, (None,))[0] is client:
                    del self.by_loop[loop]
            await client.aclose()

    def after_fork_in_child(self) -> None:
        # The parent's loops and their clients are not ours: forget them, never close them.
        self.lock = threading.Lock()
        self.by_loop = {}
        self.slots = weakref.WeakKeyDictionary()


_LOOP_POOLS = _LoopPools()


def _after_fork_in_child() -> None:
    global _shared_ssl_lock  # noqa: PLW0603
    # A thread of the parent may have held these locks at fork: it never releases them here.
    _shared_ssl_lock = threading.Lock()
    _POOL.after_fork_in_child()
    _LOOP_POOLS.after_fork_in_child()
    # Close the child's copies of the parent's token sockets. close() only releases
    # this process's descriptor: the kernel socket stays open for the parent, and no
    # FIN or TLS close_notify is sent. The sockets' objects become closed, so the
    # inherited pool objects can never use or re-close those descriptor numbers.
    for sock in list(_OUR_SOCKETS):
        with contextlib.suppress(OSError):
            sock.close()
    _OUR_SOCKETS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


# -- first async use ----------------------------------------------------------------------

_async_ready = False


def _prepare_async_http() -> None:
    """First-use work of async HTTP, for a worker thread: imports and the TLS context."""
    global _async_ready  # noqa: PLW0603 - set once per process
    import anyio._backends._asyncio  # noqa: F401, PLC0415 - anyio loads its backend on first use
    import h11  # noqa: F401, PLC0415
    import httpcore  # noqa: PLC0415
    import httpcore._backends.anyio  # noqa: F401, PLC0415 - httpcore's AutoBackend imports it lazily

    _default_ssl_context()
    _async_ready = True


# -- the sender -------------------------------------------------------------------------


class TokenHttp:
    """POST token requests with our timeout, no auth, no redirects, bounded answers."""

    def __init__(
        self,
        *,
        timeout: float,
        http_client: httpx.Client | None,
        async_http_client: httpx.AsyncClient | None,
    ) -> None:
        self.timeout = timeout
        self._user_client = http_client
        self._user_async_client = async_http_client
        self.closed = False

    def _timeout_for(self, action: SendTokenRequest) -> float:
        if action.time_left is None:
            return self.timeout
        return max(_MIN_TIMEOUT, min(self.timeout, action.time_left))

    def _client(self) -> httpx.Client:
        self._check_open()
        if self._user_client is not None:
            return self._user_client
        client = _POOL.client_for(self)
        if self.closed:  # close() ran meanwhile: give the pool back
            _POOL.release(self)
            self._check_open()
        return client

    def _check_open(self) -> None:
        if self.closed:
            raise AuthenticatorClosedError(
                "This n3xt_creds Authenticator was closed (close() or aclose() ran), so it "
                "makes no more token requests: create a new one, or close this one later"
            )

    def send(self, action: SendTokenRequest) -> TokenResponse:
        """Send one token request with the sync client (transport errors propagate)."""
        client = self._client()
        slots = None if client is self._user_client else _POOL.slots
        if slots is not None and not slots.acquire(timeout=self._timeout_for(action)):
            raise httpx.PoolTimeout(_NO_SLOT)
        try:
            with (
                send_deadline(action.time_left),
                client.stream(**self._request_arguments(action)) as response,
            ):
                reader = _reader_for(response)
                if not reader.done:
                    _read_all(reader, response.iter_raw())
                return _token_response(response, reader)
        finally:
            if slots is not None:
                slots.release()

    @contextlib.asynccontextmanager
    async def async_client(self) -> AsyncIterator[httpx.AsyncClient]:
        """The async client for one refresh: the caller's, or this event loop's shared one."""

        self._check_open()
        if not _async_ready:  # a client passed in would import anyio on the loop too
            await asyncio.to_thread(_prepare_async_http)
        if self._user_async_client is not None:
            yield self._user_async_client
            return
        yield await _LOOP_POOLS.client()

    async def asend(self, client: httpx.AsyncClient, action: SendTokenRequest) -> TokenResponse:
        """Send one token request with ``client`` (transport errors propagate)."""

        async def exchange() -> TokenResponse:
            async with client.stream(**self._request_arguments(action)) as response:
                reader = _reader_for(response)
                if not reader.done:
                    async for chunk in response.aiter_raw():
                        if not reader.feed(chunk):
                            break
                    else:
                        reader.finish()
                return _token_response(response, reader)

        slots = _LOOP_POOLS.slots.get(client)
        if slots is not None and not await _acquire(slots, self._timeout_for(action)):
            raise httpx.PoolTimeout(_NO_SLOT)
        try:
            # The whole exchange, trickled headers and body included, within the deadline.
            return await bounded(exchange(), action.time_left)
        finally:
            if slots is not None:
                slots.release()

    def _request_arguments(self, action: SendTokenRequest) -> dict[str, Any]:
        """``stream()`` arguments for both clients: our JSON request, never auth or redirects."""
        request = action.request
        return {
            "method": "POST",
            "url": request.url,
            "content": request.content,
            "headers": {**request.headers, "Accept-Encoding": _ACCEPT_ENCODING},
            "timeout": self._timeout_for(action),
            "auth": _NO_AUTH,
            "follow_redirects": False,
        }

    def close(self) -> None:
        """Stop using the shared pool (closed with its last user; never the caller's
        client); later refreshes raise."""
        self.closed = True
        if self._user_client is None:
            _POOL.release(self)

    def reset_after_fork(self) -> None:
        """In a forked child: nothing to do here (the module resets the shared pool)."""


_NO_SLOT = "no free connection in the process's token pool within the timeout"


async def _acquire(slots: Any, timeout: float) -> bool:
    """``slots.acquire()`` within ``timeout`` seconds; never leaks a permit on timeout
    or cancellation (``asyncio.wait_for`` could, before Python 3.12)."""

    if not slots.locked():
        await slots.acquire()  # a free slot: returns without waiting
        return True
    waiter = asyncio.ensure_future(slots.acquire())
    try:
        await asyncio.wait({waiter}, timeout=timeout)
    except BaseException:  # cancelled while waiting
        await _abandon(waiter, slots)
        raise
    if _acquired(waiter):
        return True
    await _abandon(waiter, slots)
    return False


def _acquired(waiter: Any) -> bool:
    return bool(waiter.done() and not waiter.cancelled() and waiter.exception() is None)


async def _abandon(waiter: Any, slots: Any) -> None:
    """Stop waiting for a slot; give it back if it was granted meanwhile."""

    if not waiter.done():
        waiter.cancel()
        await asyncio.wait({waiter})
    if _acquired(waiter):
        slots.release()


def _read_all(reader: BodyReader, chunks: Iterable[bytes]) -> None:
    for chunk in chunks:
        check_deadline()  # a trickled body through a client of the application's
        if not reader.feed(chunk):
            return
    reader.finish()
