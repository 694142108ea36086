"""transport_error: every way of getting no answer becomes a typed, secret-free error."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

from n3xt_creds import TokenRequestError
from n3xt_creds._core.token import build_token_request, transport_error
from n3xt_creds.credentials import Credentials
from tests.core._support import CANARY_SECRET, TOKEN_URL

REQUEST = httpx.Request(
    "POST",
    TOKEN_URL,
    content=build_token_request(TOKEN_URL, Credentials("client-1", CANARY_SECRET)).content,
)


@pytest.mark.parametrize(
    ("exc", "kind", "retryable"),
    [
        (httpx.ConnectTimeout("timed out", request=REQUEST), "timed out connecting", True),
        (httpx.ReadTimeout("timed out", request=REQUEST), "waiting for the answer", True),
        (httpx.WriteTimeout("timed out", request=REQUEST), "sending the request", True),
        (httpx.PoolTimeout("timed out", request=REQUEST), "free connection", True),
        (
            httpx.ConnectError("[Errno 111] Connection refused", request=REQUEST),
            "could not connect",
            True,
        ),
        (
            httpx.RemoteProtocolError("Server disconnected", request=REQUEST),
            "closed the connection",
            True,
        ),
        (httpx.ReadError("reset", request=REQUEST), "while reading", True),
        (httpx.WriteError("broken pipe", request=REQUEST), "while sending", True),
        (httpx.ProxyError("407", request=REQUEST), "proxy", True),
        (httpx.UnsupportedProtocol("ftp", request=REQUEST), "not http or https", False),
        (httpx.LocalProtocolError("bad", request=REQUEST), "transport failed", True),
        (ConnectionResetError(104, "Connection reset by peer"), "network error", True),
        (TimeoutError(), "timed out", True),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else None,
)
def test_transport_failures_are_classified(exc: BaseException, kind: str, retryable: bool) -> None:
    error = transport_error(exc, url=TOKEN_URL)
    assert type(error) is TokenRequestError
    assert error.status_code is None
    assert error.request_id is None
    assert error.retryable is retryable
    message = str(error)
    assert TOKEN_URL in message
    assert kind in message
    assert type(exc).__name__ in message
    assert CANARY_SECRET not in message
    assert error.__cause__ is None


def test_exception_message_is_sanitized_and_truncated() -> None:
    exc = httpx.ConnectError("line1\nline2\x1b" + "x" * 1000)
    message = str(transport_error(exc, url=TOKEN_URL))
    assert "\n" not in message
    assert "\x1b" not in message
    assert "x" * 201 not in message


_EMFILE_SCRIPT = r"""
import json, logging, os, resource, socket
import httpx
from n3xt_creds import Authenticator, Credentials, TokenRequestError
from n3xt_creds._core.retry import RetryPolicy

class Source:
    def get_credentials(self):
        return Credentials("client-1", "s3cret-value")

records = []
logging.getLogger("n3xt_creds").addHandler(logging.Handler())
logging.getLogger("n3xt_creds").handlers[0].emit = records.append
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen()
url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1/public/p/oauth2/token"
client = httpx.Client()  # made before the limit: loading the CA bundle opens files
auth = Authenticator(Source(), token_url=url, http_client=client,
                     retry=RetryPolicy(max_attempts=5, base_delay=0.001, max_delay=0.001))
highest = max(int(fd) for fd in os.listdir("/proc/self/fd"))
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (highest + 1, hard))
filler = []
try:
    while True:
        filler.append(os.open(os.devnull, os.O_RDONLY))
except OSError:
    pass
try:
    auth.get_token()
except TokenRequestError as exc:
    error = exc
for fd in filler:
    os.close(fd)
listener.settimeout(0.2)
try:
    listener.accept()
    connected = True
except TimeoutError:
    connected = False
print(json.dumps({
    "message": str(error),
    "retryable": error.retryable,
    "attempt_warnings": sum("attempt" in r.getMessage() for r in records),
    "connected": connected,
}))
"""


def test_too_many_open_files_is_a_local_error_and_not_retried() -> None:
    # A real EMFILE: the descriptor limit is lowered in a child interpreter.
    done = subprocess.run(
        [sys.executable, "-c", _EMFILE_SCRIPT],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["retryable"] is False
    assert "too many open files (EMFILE" in result["message"]
    assert "local resource error" in result["message"]
    assert "could not connect" not in result["message"]
    assert result["attempt_warnings"] == 0  # one token request, no retries
    assert result["connected"] is False
    assert "s3cret-value" not in done.stdout + done.stderr
