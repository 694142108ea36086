"""The emulator's HTTP server: a threading server that can be stopped promptly.

One thread per connection (HTTP/1.1 keep-alive), a deep listen backlog so bursts of
hundreds of connections are queued rather than refused, and a registry of open
connections so ``close()`` can cut idle keep-alive and hanging requests loose instead
of waiting for them.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import sys
import threading
import time
from http.server import ThreadingHTTPServer
from typing import Any

from ._state import EmulatorState

__all__ = ["EmulatorHTTPServer"]

logger = logging.getLogger("n3xt_creds.testing")


class EmulatorHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer carrying the emulator state, stoppable with requests in flight."""

    daemon_threads = True
    # The kernel caps this at net.core.somaxconn (4096 on current Linux); 1024 queues a
    # burst of several hundred simultaneous connects without a single refusal.
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: Any,
        *,
        state: EmulatorState,
        hang_timeout: float,
    ) -> None:
        self.state = state
        self.hang_timeout = hang_timeout
        # Set when the server stops: wakes handlers sleeping on latency, pause or HANG.
        self.stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._no_connections = threading.Condition(self._connections_lock)
        super().__init__(address, handler)

    def track(self, connection: socket.socket) -> None:
        """Remember an open connection (called by the handler's ``setup``)."""
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        """Forget a finished connection (called by the handler's ``finish``)."""
        with self._connections_lock:
            self._connections.discard(connection)
            if not self._connections:
                self._no_connections.notify_all()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log a handler failure instead of printing a traceback to stderr.

        A client that hung up (timeout, RESET) or a stop() cutting connections is routine
        and logged at DEBUG; anything else is a bug in the emulator and logged as an error.
        """
        exc = sys.exc_info()[1]
        if self.stopping.is_set() or isinstance(exc, (ConnectionError, TimeoutError)):
            logger.debug("connection from %s ended: %s", client_address, type(exc).__name__)
        else:
            logger.error("n3xt emulator failed serving %s", client_address, exc_info=True)

    def close(self, *, grace: float = 2.0) -> None:
        """Stop serving, cut every open connection, and wait (bounded) for handlers to end."""
        self.stopping.set()
        self.shutdown()
        self.server_close()
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            # shutdown() (not close()) wakes a handler blocked reading the next keep-alive
            # request on this socket; the handler thread then closes it itself.
            # (OSError: already closed by the peer or by a RESET fault.)
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + grace
        with self._no_connections:
            while self._connections:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._no_connections.wait(remaining)
