"""AWS for the whole test session: moto's server on 127.0.0.1 and a fault proxy in front of it.

Registered for every test directory by tests/conftest.py (the source tests and the
settings switch tests share the one moto server).

Every test talks real HTTP with real boto3 clients:

* ``moto_url`` — one ``ThreadedMotoServer`` per session on a free loopback port,
  reset before each test (``POST /moto-api/reset``);
* ``fault_proxy`` — a small reverse proxy in front of moto. It forwards every
  request untouched and records each call's operation and parameters (never the
  answer), so tests count GetSecretValue calls on the wire. On demand it answers the
  next requests itself the way Secrets Manager does when it fails — an AWS JSON error
  (``ThrottlingException``, ``InternalServiceError``, ``AccessDeniedException``,
  ``DecryptionFailure``), no answer at all (a hang), or a dropped connection. moto
  cannot produce those on demand; a real server speaking the wire format lets
  botocore's own retry logic run, which botocore's Stubber would bypass;
* ``aws_session`` — a ``boto3.Session`` with fake keys and region us-east-1, so no
  test touches ``os.environ`` or the machine's ~/.aws credentials.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

REGION = "us-east-1"
_HANG_LIMIT = 10.0  # seconds a "hang" fault holds a request if the client never gives up


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _post(url: str, data: bytes = b"") -> None:
    request = urllib.request.Request(url, data=data, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


@dataclass(frozen=True)
class Call:
    """One request seen by the proxy: the operation and its JSON parameters."""

    operation: str
    params: dict[str, Any]


@dataclass(frozen=True)
class _Fault:
    kind: str  # "error" | "hang" | "disconnect"
    code: str = ""
    status: int = 0


class FaultProxy:
    """A reverse proxy on 127.0.0.1 that forwards to moto or fails on purpose."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.removeprefix("http://")
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self._calls: list[Call] = []
        self._release = threading.Event()
        self._connections: set[socket.socket] = set()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = False  # server_close() joins request threads
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # -- control -------------------------------------------------------------------
    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        # botocore keeps connections alive; close them so the request threads end.
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self._server.server_close()
        self._thread.join(timeout=10)

    def reset(self) -> None:
        with self._lock:
            self._faults.clear()
            self._calls.clear()

    def fail(self, code: str, status: int, count: int = 1) -> None:
        """Answer the next ``count`` requests with the AWS JSON error ``code``."""
        with self._lock:
            self._faults.extend([_Fault("error", code, status)] * count)

    def hang(self, count: int = 1) -> None:
        """Hold the next ``count`` requests without answering (the client times out)."""
        with self._lock:
            self._faults.extend([_Fault("hang")] * count)

    def disconnect(self, count: int = 1) -> None:
        """Close the connection of the next ``count`` requests without answering."""
        with self._lock:
            self._faults.extend([_Fault("disconnect")] * count)

    def calls(self, operation: str = "GetSecretValue") -> list[Call]:
        """The requests for ``operation`` seen so far (faulted ones included)."""
        with self._lock:
            return [c for c in self._calls if c.operation == operation]

    # -- serving -------------------------------------------------------------------
    def _next(self, call: Call) -> _Fault | None:
        with self._lock:
            self._calls.append(call)
            return self._faults.pop(0) if self._faults else None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, like AWS: botocore reuses connections
            timeout = 30  # an idle keep-alive connection cannot hold a thread forever

            def setup(self) -> None:
                super().setup()
                with proxy._lock:
                    proxy._connections.add(self.connection)

            def finish(self) -> None:
                with proxy._lock:
                    proxy._connections.discard(self.connection)
                super().finish()

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                target = self.headers.get("X-Amz-Target", "")
                try:
                    params = json.loads(body or b"{}")
                except ValueError:
                    params = {}
                fault = proxy._next(Call(target.rpartition(".")[2], params))
                if fault is None:
                    self._forward(body)
                elif fault.kind == "error":
                    self._answer_error(fault)
                elif fault.kind == "hang":
                    proxy._release.wait(_HANG_LIMIT)
                    self.close_connection = True
                else:
                    self.close_connection = True

            def _answer_error(self, fault: _Fault) -> None:
                payload = json.dumps(
                    {"__type": fault.code, "message": f"injected {fault.code}"}
                ).encode()
                self.send_response(fault.status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _forward(self, body: bytes) -> None:
                upstream = http.client.HTTPConnection(proxy.upstream, timeout=10)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                    upstream.request("POST", self.path, body=body, headers=headers)
                    answer = upstream.getresponse()
                    content = answer.read()
                finally:
                    upstream.close()
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in {"content-length", "transfer-encoding", "connection"}:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

        return Handler


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """URL of moto's server, running for the whole session."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def _proxy(moto_url: str) -> Iterator[FaultProxy]:
    proxy = FaultProxy(moto_url).start()
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def fault_proxy(_proxy: FaultProxy, moto_url: str) -> FaultProxy:
    """The proxy, with moto's state, queued faults and recorded calls cleared."""
    _post(f"{moto_url}/moto-api/reset")
    _proxy.reset()
    return _proxy


@pytest.fixture(scope="session")
def aws_session() -> Any:
    """A boto3 session with fake keys: moto accepts any, and nothing reads the environment."""
    import boto3

    return boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )


@pytest.fixture
def sm(aws_session: Any, moto_url: str, fault_proxy: FaultProxy) -> Any:
    """A Secrets Manager client straight to moto (not through the proxy) to arrange secrets."""
    return aws_session.client("secretsmanager", endpoint_url=moto_url)


def put_pair(sm: Any, secret_id: str = "n3xt/api", **pair: str) -> str:
    """Create ``secret_id`` holding ``pair`` as a JSON object; return its ARN."""
    return str(sm.create_secret(Name=secret_id, SecretString=json.dumps(pair))["ARN"])


@pytest.fixture
def put() -> Callable[..., str]:
    """``put(sm, secret_id, **pair)``: create a JSON secret (see :func:`put_pair`)."""
    return put_pair
