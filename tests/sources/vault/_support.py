"""Helpers shared by the Vault tests (fixtures are in conftest.py)."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

K8S_NAMESPACE = "payments"
K8S_SERVICE_ACCOUNT = "api"

# -- small helpers for tests ------------------------------------------------------------


class RequestLog:
    """Counts Vault requests through a real ``requests.Session`` response hook."""

    def __init__(self) -> None:
        self.session = requests.Session()
        self.calls: list[tuple[str, str, int]] = []
        self.client_tokens: list[str] = []  # tokens Vault handed out, to prove they never leak
        self.accessors: list[str] = []  # their accessors, to look them up as root
        self.session.hooks["response"].append(self._record)

    def _record(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        path = requests.utils.urlparse(response.request.url).path or ""
        self.calls.append((str(response.request.method), path, response.status_code))
        if "/login" in path and response.ok:
            auth = response.json()["auth"]
            self.client_tokens.append(auth["client_token"])
            self.accessors.append(auth["accessor"])

    def count(self, fragment: str) -> int:
        return sum(1 for _, path, _ in self.calls if fragment in path)

    def close(self) -> None:
        self.session.close()


class RecordingSleep:
    """Records requested delays; sleeps for real only when ``real`` (Retry-After tests)."""

    def __init__(self, *, real: bool = False, on_sleep: Callable[[], None] | None = None) -> None:
        self.delays: list[float] = []
        self.real = real
        self.on_sleep = on_sleep

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        if self.on_sleep is not None:
            self.on_sleep()
        if self.real:
            time.sleep(seconds)


def assert_no_secret(text: str, *secret_values: str) -> None:
    """Fail if any secret value shows up in ``text`` (messages, reprs, logs)."""
    for value in secret_values:
        assert value not in text, "a secret value leaked into user-visible text"


class StubServer:
    """A tiny HTTP server on 127.0.0.1 for answers OpenBao cannot give on demand.

    ``respond(method, path, headers)`` returns ``(status, headers, body)``; every
    request is recorded as ``(method, path, headers)``. Used as a context manager so
    its thread always stops.
    """

    def __init__(
        self, respond: Callable[[str, str, dict[str, str]], tuple[int, dict[str, str], bytes]]
    ) -> None:
        self.respond = respond
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                headers = dict(self.headers.items())
                stub.requests.append((self.command, self.path, headers))
                status, out_headers, body = stub.respond(self.command, self.path, headers)
                self.send_response(status)
                for name, value in out_headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> StubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def kv2_body(data: dict[str, Any], version: int = 1) -> bytes:
    """A KV v2 read answer, as Vault shapes it."""
    return json.dumps(
        {
            "data": {
                "data": data,
                "metadata": {"version": version, "deletion_time": "", "destroyed": False},
            }
        }
    ).encode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def service_account_jwt(jti: str) -> str:
    """An unsigned JWT with service-account claims; TokenReview (faked) vouches for it."""

    def part(obj: dict[str, str]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    claims = {
        "iss": "kubernetes/serviceaccount",
        "kubernetes.io/serviceaccount/namespace": K8S_NAMESPACE,
        "kubernetes.io/serviceaccount/service-account.name": K8S_SERVICE_ACCOUNT,
        "kubernetes.io/serviceaccount/service-account.uid": "uid-1",
        "sub": f"system:serviceaccount:{K8S_NAMESPACE}:{K8S_SERVICE_ACCOUNT}",
        "jti": jti,
    }
    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"
