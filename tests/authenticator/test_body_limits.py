"""The 1 MiB cap on a token answer holds while reading: on the wire and decompressed.

A local server sends the shapes no emulator would: a huge body (declared or not), a
gzip bomb, compressed valid answers. Memory is measured with tracemalloc around the
refresh.
"""

from __future__ import annotations

import gzip
import json
import threading
import tracemalloc
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from n3xt_creds import Authenticator, TokenRequestError
from n3xt_creds._core.retry import RetryPolicy
from n3xt_creds._core.token import MAX_BODY_BYTES
from tests.authenticator._support import SwitchableSource

BOMB_BYTES = 64 << 20  # inflates to 64 MiB
HUGE_BYTES = 200 << 20
TOKEN_ANSWER = json.dumps(
    {
        "status_code": 200,
        "expires_in": 3600,
        "access_token": "tok-compressed",
        "token_type": "bearer",
    }
).encode()
ONE_TRY = RetryPolicy(max_attempts=1)


def _bomb() -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    zeros = bytes(1 << 20)
    parts = [compressor.compress(zeros) for _ in range(BOMB_BYTES >> 20)]
    return b"".join(parts) + compressor.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    bomb = b""

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the client hanging up on a huge body is the point


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        path = self.path.rsplit("/", 1)[-1]
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if path == "bomb":
            self._send(self.server.bomb, encoding="gzip")
        elif path == "gzip":
            self._send(gzip.compress(TOKEN_ANSWER), encoding="gzip")
        elif path == "deflate":
            raw = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
            self._send(raw.compress(TOKEN_ANSWER) + raw.flush(), encoding="deflate")
        elif path == "brotli":
            self._send(b"\x8b\x00\x80not-really-brotli", encoding="br")
        elif path in ("huge-declared", "huge-undeclared"):
            if path == "huge-declared":
                self.send_header("Content-Length", str(HUGE_BYTES))
            else:
                self.send_header("Connection", "close")
            self.end_headers()
            chunk = b"x" * (1 << 20)
            for _ in range(HUGE_BYTES >> 20):
                self.wfile.write(chunk)

    def _send(self, body: bytes, *, encoding: str) -> None:
        self.send_header("Content-Encoding", encoding)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.bomb = _bomb()
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1/public/p/oauth2"
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def _peak_mib_of(action: object) -> tuple[float, BaseException | None]:
    tracemalloc.start()
    error: BaseException | None = None
    try:
        action()  # type: ignore[operator]
    except TokenRequestError as exc:
        error = exc
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak / 2**20, error


@pytest.mark.parametrize("shape", ["bomb", "huge-declared", "huge-undeclared"])
def test_oversized_answers_stop_at_the_cap(
    server: str, source: SwitchableSource, shape: str
) -> None:
    auth = Authenticator(source, token_url=f"{server}/{shape}", retry=ONE_TRY)
    peak, error = _peak_mib_of(auth.get_token)
    auth.close()
    assert isinstance(error, TokenRequestError)
    assert f"larger than {MAX_BODY_BYTES} bytes" in str(error)
    assert peak < 8, f"{peak:.1f} MiB"  # the whole answer would be 64-200 MiB


async def test_a_gzip_bomb_stops_at_the_cap_async(server: str, source: SwitchableSource) -> None:
    auth = Authenticator(source, token_url=f"{server}/bomb", retry=ONE_TRY)
    tracemalloc.start()
    try:
        with pytest.raises(TokenRequestError, match="larger than"):
            await auth.aget_token()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    await auth.aclose()
    assert peak / 2**20 < 8


@pytest.mark.parametrize("shape", ["gzip", "deflate"])
def test_compressed_answers_are_decoded(server: str, source: SwitchableSource, shape: str) -> None:
    with Authenticator(source, token_url=f"{server}/{shape}", retry=ONE_TRY) as auth:
        assert auth.get_token() == "tok-compressed"


def test_an_encoding_we_did_not_ask_for_is_refused(server: str, source: SwitchableSource) -> None:
    with Authenticator(source, token_url=f"{server}/brotli", retry=ONE_TRY) as auth:
        with pytest.raises(TokenRequestError, match="encoded as 'br'"):
            auth.get_token()


def _mock_token_endpoint(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=json.loads(TOKEN_ANSWER))


def test_an_injected_client_with_a_mock_transport_works(source: SwitchableSource) -> None:
    # Answers made in memory (MockTransport, respx) are already read: no stream to cap.
    with httpx.Client(transport=httpx.MockTransport(_mock_token_endpoint)) as client:
        with Authenticator(source, token_url="https://authn.n3xt.io/t", http_client=client) as auth:
            assert auth.get_token() == "tok-compressed"


async def test_an_injected_async_client_with_a_mock_transport_works(
    source: SwitchableSource,
) -> None:
    transport = httpx.MockTransport(_mock_token_endpoint)
    async with httpx.AsyncClient(transport=transport) as client:
        auth = Authenticator(source, token_url="https://authn.n3xt.io/t", async_http_client=client)
        assert await auth.aget_token() == "tok-compressed"
        await auth.aclose()


def test_an_oversized_in_memory_answer_is_still_refused(source: SwitchableSource) -> None:
    def huge(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"x" * (MAX_BODY_BYTES + 1))

    with httpx.Client(transport=httpx.MockTransport(huge)) as client:
        auth = Authenticator(
            source, token_url="https://authn.n3xt.io/t", http_client=client, retry=ONE_TRY
        )
        with pytest.raises(TokenRequestError, match="larger than"):
            auth.get_token()
        auth.close()
