"""transport_error: every way of getting no answer becomes a typed, secret-free error."""

from __future__ import annotations

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
