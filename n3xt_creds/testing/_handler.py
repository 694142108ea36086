"""The emulator's request handler: N3XT's token endpoint and a protected stand-in API.

Routes:

* ``POST /v1/public/<project>/oauth2/token`` — N3XT's client-credentials grant with a
  JSON body (any project id is accepted; clients are shared across projects).
* ``<any method> /api/<path>`` — answers 200 only for a valid, unexpired, unrevoked
  ``Authorization: Bearer <token>``, else 401 with ``WWW-Authenticate``.

Every JSON answer carries ``status_code`` and ``request_id`` (also sent as
``X-Request-Id``), like N3XT's. Request bodies, secrets and tokens are never logged.
"""

from __future__ import annotations

import json
import logging
import re
import select
import socket
import struct
import time
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any

from ._answers import error_body, fault_answer, grant_answer
from ._faults import Fault
from ._server import EmulatorHTTPServer

__all__ = ["COUNTERS_PATH", "EmulatorRequestHandler"]

logger = logging.getLogger("n3xt_creds.testing")

_TOKEN_PATH = re.compile(r"^/v1/public/(?P<project>[^/]+)/oauth2/token$")
_QUERY = re.compile(r"\?\S*")
_MAX_BODY = 64 * 1024
#: ``GET`` here answers the emulator's counters as JSON (no token needed: it is a test tool).
COUNTERS_PATH = "/_emulator/counters"


class _Dropped(Exception):
    """The answer was deliberately not sent (HANG, RESET): close the connection."""


class EmulatorRequestHandler(BaseHTTPRequestHandler):
    """Serves one connection of the emulator (possibly several keep-alive requests)."""

    protocol_version = "HTTP/1.1"
    server_version = "n3xt-emulator"
    sys_version = ""
    # Idle keep-alive connections are closed after this long.
    timeout = 60

    server: EmulatorHTTPServer

    def setup(self) -> None:
        """Register the connection so the server can cut it loose on stop."""
        super().setup()
        # Headers and body go out in two writes; without TCP_NODELAY, Nagle's algorithm
        # and the client's delayed ACK would add ~40 ms to every answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection)

    def finish(self) -> None:
        """Unregister the connection."""
        try:
            super().finish()
        except OSError:
            pass  # the socket was reset on purpose or by the peer
        finally:
            self.server.untrack(self.connection)

    # Every method goes through the same router; unknown methods still get 501.
    def do_GET(self) -> None:
        """Route a GET."""
        self._route()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def _route(self) -> None:
        self.request_id = f"request-id-emu-{uuid.uuid4()}"
        path = self.path.split("?", 1)[0]
        try:
            body = self._read_body()
            if body is None:
                return
            if _TOKEN_PATH.match(path):
                self._token_endpoint(body)
            elif path == "/api" or path.startswith("/api/"):
                self._api(path[len("/api") :] or "/")
            elif path == COUNTERS_PATH and self.command == "GET":
                self._counters()
            else:
                self._send_error_json(404, "not_found", f"no such endpoint: {path}")
        except _Dropped:
            self.close_connection = True

    def _read_body(self) -> bytes | None:
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            if self.headers.get("Transfer-Encoding"):
                # Chunked uploads are not needed by any N3XT client; refuse them plainly.
                self.close_connection = True
                self._send_error_json(411, "invalid_request", "Content-Length is required")
                return None
            return b""
        try:
            length = int(length_header)
        except ValueError:
            length = -1
        if not 0 <= length <= _MAX_BODY:
            self.close_connection = True
            self._send_error_json(413, "invalid_request", "body must be 0..65536 bytes")
            return None
        return self.rfile.read(length)

    def _counters(self) -> None:
        """The counters as JSON, for tests whose app runs in other processes."""
        counters = self.server.state.counters()
        self._send_json(
            200,
            {
                "token_requests": dict(counters.token_requests),
                "token_requests_total": counters.token_requests_total,
                "api_calls": dict(counters.api_calls),
                "api_calls_total": counters.api_calls_total,
                "max_in_flight": counters.max_in_flight,
                "in_flight": counters.in_flight,
            },
        )

    # --- token endpoint -------------------------------------------------------------

    def _token_endpoint(self, body: bytes) -> None:
        state = self.server.state
        generation = state.begin_token_request()
        counted = left = False

        def count(outcome: str) -> None:
            nonlocal counted
            counted = True
            state.count_token_outcome(outcome, generation)

        def leave() -> None:
            nonlocal left
            if not left:
                left = True
                state.leave_in_flight(generation)

        try:
            self._wait(state.latency)
            self._wait_until_resumed()
            fault = state.next_fault()
            if fault is not None and fault[0] in (Fault.HANG, Fault.RESET):
                # Counted as soon as it starts: the client sees nothing else to wait for.
                count(fault[0].value)
                if fault[0] is Fault.HANG:
                    self._hang()
                    raise _Dropped
                self._reset()
            if fault is not None:
                answer = fault_answer(self.request_id, *fault)
            else:
                content_type = self.headers.get("Content-Type", "")
                answer = grant_answer(self.request_id, self.command, content_type, body, state)
            # Counted before answering, so a client that reads the counters right after
            # the answer always sees its own request counted and no longer in flight.
            count(answer.outcome)
            if state.trickle_interval > 0:
                # In flight until the last byte is out or the client hangs up.
                self._trickle(answer.status, answer.body, answer.content_type, answer.headers)
                raise _Dropped
            leave()
            self._send(answer.status, answer.body, answer.content_type, headers=answer.headers)
        finally:
            if not counted:
                count("dropped")
            leave()

    def _hang(self) -> None:
        """Say nothing until the client hangs up, the server stops, or hang_timeout passes."""
        deadline = time.monotonic() + self.server.hang_timeout
        while not self.server.stopping.is_set() and time.monotonic() < deadline:
            readable, _, _ = select.select([self.connection], [], [], 0.05)
            if readable:
                try:
                    if not self.connection.recv(1, socket.MSG_PEEK):
                        return  # the client closed the connection: it gave up
                except OSError:
                    return
                # The client sent more bytes (pipelining): keep hanging, without spinning.
                self.server.stopping.wait(0.05)

    def _trickle(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None
    ) -> None:
        """Send the whole answer one byte per ``trickle_interval``, until the client leaves."""
        lines = [
            f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}",
            f"Server: {self.server_version}",
            f"Content-Type: {content_type}",
            f"Content-Length: {len(body)}",
            f"X-Request-Id: {self.request_id}",
            "Cache-Control: no-store",
            "Connection: close",
            *(f"{name}: {value}" for name, value in (headers or {}).items()),
        ]
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        interval = self.server.state.trickle_interval
        for index in range(len(raw)):
            if self.server.stopping.wait(interval) or self._client_left():
                return
            try:
                self.wfile.write(raw[index : index + 1])
            except OSError:
                return  # the client hung up

    def _client_left(self) -> bool:
        readable, _, _ = select.select([self.connection], [], [], 0)
        if not readable:
            return False
        try:
            return not self.connection.recv(1, socket.MSG_PEEK)
        except OSError:
            return True

    def _reset(self) -> None:
        """Close the socket with SO_LINGER 0 so the client sees a TCP RST."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        raise _Dropped

    def _wait(self, seconds: float) -> None:
        if seconds > 0:
            self.server.stopping.wait(seconds)

    def _wait_until_resumed(self) -> None:
        deadline = time.monotonic() + self.server.hang_timeout
        resumed = self.server.state.resumed
        while not resumed.is_set() and not self.server.stopping.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            resumed.wait(min(remaining, 0.05))

    # --- protected API --------------------------------------------------------------

    def _api(self, path: str) -> None:
        authorization = self.headers.get("Authorization", "")
        scheme, _, token = authorization.partition(" ")
        presented = token.strip() if scheme.lower() == "bearer" else None
        verdict = self.server.state.check_token(presented)
        self.server.state.record_api_call(verdict.outcome)
        if verdict.ok:
            self._send_json(
                200,
                {"ok": True, "client_id": verdict.client_id, "method": self.command, "path": path},
            )
            return
        if verdict.outcome == "missing_token":
            # RFC 6750 section 3.1: no error code when the request carried no credentials.
            challenge = 'Bearer realm="n3xt-emulator"'
            description = "a bearer token is required"
        else:
            description = f"the access token is {verdict.outcome.split('_')[0]}"
            challenge = (
                f'Bearer realm="n3xt-emulator", error="invalid_token", '
                f'error_description="{description}"'
            )
        self._send_error_json(
            401, "invalid_token", description, headers={"WWW-Authenticate": challenge}
        )

    # --- writing answers ------------------------------------------------------------

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Answer protocol-level errors (bad request line, unknown method) in N3XT's JSON shape."""
        if not hasattr(self, "request_id"):
            self.request_id = f"request-id-emu-{uuid.uuid4()}"
        self.close_connection = True
        self._send_error_json(code, "invalid_request", message or "bad request")

    def _send_error_json(
        self,
        status: int,
        error: str,
        description: str,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        body = error_body(self.request_id, status, error, description)
        self._send(status, body, "application/json", headers=headers)

    def _send_json(
        self, status: int, body: dict[str, Any], *, headers: dict[str, str] | None = None
    ) -> None:
        self._send(status, json.dumps(body).encode(), "application/json", headers=headers)

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Request-Id", self.request_id)
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Send http.server's access log to the ``n3xt_creds.testing`` logger, not stderr."""
        # The request line may carry a query string; drop it in case someone put a secret there.
        logger.debug("%s %s", self.address_string(), _QUERY.sub("", format % args))
