"""Sending token requests over httpx, for the sync and async refresh drivers.

Sync refreshes share one ``httpx.Client`` (created on first use, kept for keep-alive).
Async refreshes use a fresh ``httpx.AsyncClient`` per refresh: an async client is
bound to the event loop it first ran on, and an authenticator may be used from
several loops; a refresh is rare enough that a new connection costs nothing that
matters. Loading the CA bundle into a TLS context takes ~30 ms, so it is done once per
process and shared by every client we create, sync and async (an ``SSLContext`` is
safe to share); async callers build it in a worker thread, never on the event loop.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import threading
from collections.abc import AsyncIterator
from typing import Any

import httpx

from .flow import SendTokenRequest
from .token import TokenResponse

__all__ = ["TokenHttp"]

# Clients owned by a parent process at fork time. The child must not use them (their
# pooled sockets are shared with the parent) nor close them (a TLS close_notify would
# end the parent's session); keeping them referenced stops their finalizers too.
_ABANDONED_AT_FORK: list[object] = []

# The token request is authenticated by its body; a client the caller passes in may
# have an ``auth`` of its own (even this authenticator), which must not apply here.
_NO_AUTH = httpx.Auth()

# Never let a nearly exhausted deadline produce a zero or negative timeout.
_MIN_TIMEOUT = 0.05

_shared_ssl_context: ssl.SSLContext | None = None
_shared_ssl_lock = threading.Lock()


def _default_ssl_context() -> ssl.SSLContext:
    """httpx's default verifying TLS context, built once per process."""
    global _shared_ssl_context  # noqa: PLW0603 - a process-wide cache, guarded by its lock
    with _shared_ssl_lock:
        if _shared_ssl_context is None:
            _shared_ssl_context = httpx.create_ssl_context()
        return _shared_ssl_context


def _new_lock_in_child() -> None:
    # A thread of the parent may have held the lock at fork: it never releases it here.
    global _shared_ssl_lock  # noqa: PLW0603
    _shared_ssl_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_lock_in_child)


class TokenHttp:
    """POST token requests with our timeout, no auth, no redirects."""

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
        self._owned_client: httpx.Client | None = None
        self._lock = threading.Lock()
        self.closed = False

    def _timeout_for(self, action: SendTokenRequest) -> float:
        if action.time_left is None:
            return self.timeout
        return max(_MIN_TIMEOUT, min(self.timeout, action.time_left))

    def _client(self) -> httpx.Client:
        self._check_open()
        if self._user_client is not None:
            return self._user_client
        with self._lock:
            self._check_open()  # again: close() may have run meanwhile
            if self._owned_client is None:
                self._owned_client = httpx.Client(
                    verify=_default_ssl_context(), timeout=self.timeout
                )
            return self._owned_client

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError(
                "this n3xt_creds Authenticator was closed; create a new one to get tokens again"
            )

    def send(self, action: SendTokenRequest) -> TokenResponse:
        """Send one token request with the sync client (transport errors propagate)."""
        response = self._client().post(**self._post_arguments(action))
        return TokenResponse(response.status_code, response.headers, response.content)

    @contextlib.asynccontextmanager
    async def async_client(self) -> AsyncIterator[httpx.AsyncClient]:
        """The async client for one refresh: the caller's, or a new one closed afterwards."""
        import asyncio  # noqa: PLC0415 - loaded by async callers only; keeps `import n3xt_creds` cheap

        self._check_open()
        if self._user_async_client is not None:
            yield self._user_async_client
            return
        ssl_context = _shared_ssl_context
        if ssl_context is None:
            ssl_context = await asyncio.to_thread(_default_ssl_context)
        async with httpx.AsyncClient(verify=ssl_context, timeout=self.timeout) as client:
            yield client

    async def asend(self, client: httpx.AsyncClient, action: SendTokenRequest) -> TokenResponse:
        """Send one token request with ``client`` (transport errors propagate)."""
        response = await client.post(**self._post_arguments(action))
        return TokenResponse(response.status_code, response.headers, response.content)

    def _post_arguments(self, action: SendTokenRequest) -> dict[str, Any]:
        """``post()`` arguments for both clients: our JSON request, never auth or redirects."""
        request = action.request
        return {
            "url": request.url,
            "content": request.content,
            "headers": request.headers,
            "timeout": self._timeout_for(action),
            "auth": _NO_AUTH,
            "follow_redirects": False,
        }

    def close(self) -> None:
        """Close the client we created (never the caller's); later refreshes raise."""
        with self._lock:
            self.closed = True
            client, self._owned_client = self._owned_client, None
        if client is not None:
            client.close()

    def reset_after_fork(self) -> None:
        """In a forked child: forget the parent's pooled client; build our own when needed."""
        self._lock = threading.Lock()
        if self._owned_client is not None:
            _ABANDONED_AT_FORK.append(self._owned_client)
            self._owned_client = None
