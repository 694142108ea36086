"""parse_token_response: every classification row and every bad body, by example."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from n3xt_creds import InvalidClientError, TokenRequestError
from n3xt_creds._core.token import MAX_BODY_BYTES, Phase, Token, TokenResponse, parse_token_response
from tests.core._support import CANARY_TOKEN, ok, response, token_body


def parse(resp: TokenResponse, **kwargs: Any) -> Token:
    return parse_token_response(resp, obtained_at=100.0, refresh_margin=300.0, **kwargs)


def parse_error(resp: TokenResponse, **kwargs: Any) -> TokenRequestError:
    with pytest.raises(TokenRequestError) as info:
        parse(resp, **kwargs)
    error = info.value
    assert CANARY_TOKEN not in str(error)
    assert error.__cause__ is None
    assert error.__context__ is None
    return error


# -- the good answer ---------------------------------------------------------------


def test_valid_answer_gives_token_with_request_id_and_phases() -> None:
    token = parse(ok())
    assert token.value() == CANARY_TOKEN
    assert token.token_type == "bearer"
    assert token.expires_in == 3600.0
    assert token.request_id == "req-ok-1"
    assert (token.obtained_at, token.stale_at, token.expired_at, token.expires_at) == (
        100.0,
        3400.0,
        3670.0,
        3700.0,
    )
    assert token.phase(100.0) is Phase.FRESH


@pytest.mark.parametrize("token_type", ["bearer", "Bearer", "BEARER", "bEaReR"])
def test_token_type_is_bearer_case_insensitively(token_type: str) -> None:
    assert parse(ok(token_type=token_type)).token_type == "bearer"


@pytest.mark.parametrize(
    ("expires_in", "seconds"), [(60, 60.0), (0.5, 0.5), (3600.25, 3600.25), ("3600", 3600.0)]
)
def test_expires_in_accepts_numbers_and_numeric_strings(expires_in: Any, seconds: float) -> None:
    assert parse(ok(expires_in=expires_in)).expires_in == seconds


@pytest.mark.parametrize("body_status", [200, 201, None])
def test_body_status_code_agreeing_with_success_or_absent_is_fine(body_status: Any) -> None:
    assert parse(ok(status_code=body_status)).value() == CANARY_TOKEN


def test_other_2xx_http_status_is_accepted() -> None:
    assert parse(response(201, token_body())).value() == CANARY_TOKEN


def test_missing_expires_in_means_an_hour_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="n3xt_creds"):
        token = parse(ok(expires_in=None))
    assert token.expires_in == 3600.0
    [record] = [r for r in caplog.records if r.name == "n3xt_creds"]
    assert record.levelno == logging.WARNING
    assert "expires_in" in record.getMessage()
    assert "req-ok-1" in record.getMessage()


def test_missing_token_type_is_assumed_bearer_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG, logger="n3xt_creds"):
        token = parse(ok(token_type=None))
    assert token.token_type == "bearer"
    assert any("token_type" in r.getMessage() for r in caplog.records if r.levelno >= 30)


# -- 2xx answers that are not a token: transient, message says what was wrong ---------


BAD_BODIES = [
    pytest.param(token_body(access_token=None), "no access_token", id="missing-access-token"),
    pytest.param(token_body(access_token=""), "empty", id="empty-access-token"),
    pytest.param(token_body(access_token=12345), "number, not a string", id="int-token"),
    pytest.param(token_body(access_token=["x"]), "array, not a string", id="list-token"),
    pytest.param(token_body(access_token="a b"), "HTTP header", id="token-with-space"),
    pytest.param(token_body(access_token="abc\r\nX-Evil: 1"), "HTTP header", id="token-crlf"),
    pytest.param(token_body(token_type="mac"), "'mac', not 'bearer'", id="token-type-mac"),
    pytest.param(token_body(token_type=7), "non-string", id="token-type-int"),
    pytest.param(token_body(expires_in=0), "positive", id="expires-in-0"),
    pytest.param(token_body(expires_in=-1), "positive", id="expires-in-negative"),
    pytest.param(token_body(expires_in="abc"), "not a number", id="expires-in-abc"),
    pytest.param(token_body(expires_in="-5"), "not a number", id="expires-in-negative-str"),
    pytest.param(token_body(expires_in=True), "boolean", id="expires-in-bool"),
    pytest.param(token_body(expires_in=[1]), "not a number", id="expires-in-list"),
    pytest.param(token_body(expires_in=10**400), "positive, finite", id="expires-in-huge-int"),
    pytest.param(token_body(status_code="200"), "status_code", id="status-code-string"),
    pytest.param(token_body(status_code=302), "status_code", id="status-code-302"),
    pytest.param(token_body(status_code=True), "status_code", id="status-code-bool"),
]


@pytest.mark.parametrize(("body", "says"), BAD_BODIES)
def test_bad_token_body_in_200_is_retryable_error(body: dict[str, Any], says: str) -> None:
    error = parse_error(response(200, body))
    assert type(error) is TokenRequestError
    assert error.retryable
    assert error.status_code == 200
    assert error.request_id == "req-ok-1"
    assert says in str(error)
    assert "application/json" in str(error)


@pytest.mark.parametrize(
    ("raw_expires_in", "says"),
    [("NaN", "finite"), ("Infinity", "finite"), ("-Infinity", "finite"), ("1e400", "finite")],
)
def test_non_finite_expires_in_is_rejected(raw_expires_in: str, says: str) -> None:
    raw = f'{{"access_token": "{CANARY_TOKEN}", "token_type": "bearer", "expires_in": {raw_expires_in}}}'
    error = parse_error(
        response(200, raw=raw.encode(), headers={"Content-Type": "application/json"})
    )
    assert error.retryable
    assert says in str(error)


RAW_BODIES = [
    pytest.param(b"", "text/plain", "empty", id="empty"),
    pytest.param(
        b"<html><body>Bad gateway " + CANARY_TOKEN.encode() + b"</body></html>",
        "text/html",
        "not JSON",
        id="html",
    ),
    pytest.param(
        b"access_token=" + CANARY_TOKEN.encode(),
        "application/x-www-form-urlencoded",
        "not JSON",
        id="form-encoded",
    ),
    pytest.param(b"\xff\xfe\x00garbage\x80", "application/octet-stream", "not JSON", id="binary"),
    pytest.param(b"[" * 100_000, "application/json", "not JSON", id="deeply-nested"),
    pytest.param(
        b'["' + CANARY_TOKEN.encode() + b'"]', "application/json", "JSON array", id="json-array"
    ),
    pytest.param(
        b'"' + CANARY_TOKEN.encode() + b'"', "application/json", "JSON string", id="json-string"
    ),
    pytest.param(b"null", "application/json", "JSON null", id="json-null"),
    pytest.param(b"42", "application/json", "JSON number", id="json-number"),
    pytest.param(b"1" * 5000, "application/json", "not JSON", id="int-beyond-digit-limit"),
]


@pytest.mark.parametrize(("raw", "content_type", "says"), RAW_BODIES)
def test_non_token_200_is_retryable_and_described_not_shown(
    raw: bytes, content_type: str, says: str
) -> None:
    error = parse_error(
        response(200, raw=raw, headers={"Content-Type": f"{content_type}; charset=utf-8"})
    )
    assert error.retryable
    assert error.status_code == 200
    assert says in str(error)
    assert f"{content_type}, {len(raw)} bytes" in str(error)
    assert "charset" not in str(error)


def test_huge_body_is_not_parsed() -> None:
    raw = json.dumps(token_body(padding="x" * MAX_BODY_BYTES)).encode()
    error = parse_error(response(200, raw=raw, headers={"Content-Type": "application/json"}))
    assert error.retryable
    assert "too large" in str(error)


def test_content_type_description_is_sanitized() -> None:
    headers = {"Content-Type": "text/html\x1b[31m" + "x" * 500}
    message = str(parse_error(response(200, raw=b"<html>", headers=headers)))
    assert "\x1b" not in message
    assert "x" * 61 not in message


def test_missing_content_type_is_described() -> None:
    assert "no content-type, 3 bytes" in str(parse_error(response(200, raw=b"abc", headers={})))


# -- status_code in a 2xx body must agree with success --------------------------------


@pytest.mark.parametrize("body_status", [500, 502, 503])
def test_5xx_in_200_body_is_retryable(body_status: int) -> None:
    body = {"status_code": body_status, "request_id": "req-in-body", "error": "server_error"}
    error = parse_error(response(200, body))
    assert type(error) is TokenRequestError
    assert error.retryable
    assert error.status_code == body_status
    assert error.request_id == "req-in-body"
    assert f"status_code {body_status} in the body of an HTTP 200 answer" in str(error)


@pytest.mark.parametrize("body_status", [400, 403, 404, 422])
def test_4xx_in_200_body_is_final(body_status: int) -> None:
    # Even with an access_token present: the body's own verdict wins over the fields.
    error = parse_error(response(200, token_body(status_code=body_status)))
    assert type(error) is TokenRequestError
    assert not error.retryable
    assert error.status_code == body_status


def test_401_in_200_body_is_invalid_client() -> None:
    error = parse_error(response(200, {"status_code": 401, "error": "invalid_client"}))
    assert isinstance(error, InvalidClientError)


def test_429_in_200_body_is_retryable_like_a_real_429() -> None:
    assert parse_error(response(200, {"status_code": 429})).retryable


# -- HTTP failure classification ------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, {"status_code": 401, "error": "invalid_client", "error_description": "bad secret"}),
        (401, {}),
        (401, "<html>Unauthorized</html>"),
        (400, {"status_code": 400, "error": "invalid_client"}),
        (403, {"error": "invalid_client"}),
    ],
)
def test_rejected_client_is_invalid_client_error(status: int, body: Any) -> None:
    resp = (
        response(status, raw=body.encode(), headers={})
        if isinstance(body, str)
        else response(status, body)
    )
    error = parse_error(resp)
    assert isinstance(error, InvalidClientError)
    assert not error.retryable
    assert error.status_code == status
    assert "client_id and client_secret" in str(error)


@pytest.mark.parametrize(
    ("status", "error_code", "hint"),
    [
        (400, "invalid_request", "malformed"),
        (400, "unsupported_grant_type", "malformed"),
        (400, "invalid_scope", "malformed"),
        (400, "unauthorized_client", "malformed"),
        (403, "access_denied", "not allowed"),
        (404, None, "check token_url and the project id"),
        (405, None, "POST"),
        (415, None, "JSON body"),
        (409, None, "refused"),
        (418, None, "refused"),
        (451, None, "refused"),
    ],
)
def test_final_4xx_carry_code_description_and_hint(
    status: int, error_code: str | None, hint: str
) -> None:
    body: dict[str, Any] = {"status_code": status, "request_id": f"req-{status}"}
    if error_code:
        body |= {"error": error_code, "error_description": "what went wrong"}
    error = parse_error(response(status, body))
    assert type(error) is TokenRequestError
    assert not error.retryable
    assert error.status_code == status
    assert error.request_id == f"req-{status}"
    assert error.retry_after is None
    message = str(error)
    assert f"HTTP {status}" in message
    assert hint in message
    assert f"req-{status}" in message
    if error_code:
        assert f"{error_code} (what went wrong)" in message


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 599])
def test_transient_statuses_are_retryable(status: int) -> None:
    error = parse_error(response(status, {"status_code": status, "request_id": "req-t"}))
    assert type(error) is TokenRequestError
    assert error.retryable
    assert error.status_code == status
    assert error.request_id == "req-t"


def test_html_502_is_retryable_and_body_not_shown() -> None:
    html = b"<html><title>502 Bad Gateway</title>" + CANARY_TOKEN.encode() + b"</html>"
    error = parse_error(response(502, raw=html, headers={"Content-Type": "text/html"}))
    assert error.retryable
    assert error.status_code == 502
    assert "Bad Gateway" not in str(error)


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirect_is_final_with_hint(status: int) -> None:
    error = parse_error(response(status, raw=b"", headers={"Location": "https://elsewhere/"}))
    assert not error.retryable
    assert "redirected" in str(error)


def test_informational_status_is_final() -> None:
    assert not parse_error(response(100, raw=b"", headers={})).retryable


def test_error_description_is_sanitized_and_truncated() -> None:
    body = {"error": "invalid_request\n\x1b[2J", "error_description": "d" * 1000 + "\r\nX: y"}
    message = str(parse_error(response(400, body)))
    assert "\n" not in message
    assert "\x1b" not in message
    assert "d" * 201 not in message


# -- request_id ------------------------------------------------------------------------


def test_request_id_from_header_when_body_has_none() -> None:
    resp = response(200, token_body(request_id=None), headers={"X-Request-Id": "hdr-1"})
    assert parse(resp).request_id == "hdr-1"


def test_request_id_header_lookup_is_case_insensitive() -> None:
    error = parse_error(response(503, raw=b"", headers={"x-request-id": "hdr-2"}))
    assert error.request_id == "hdr-2"


def test_body_request_id_wins_over_header() -> None:
    resp = response(200, token_body(), headers={"X-Request-Id": "hdr-1"})
    assert parse(resp).request_id == "req-ok-1"


def test_request_id_is_sanitized_for_logs() -> None:
    error = parse_error(response(500, {"request_id": "abc\r\nFAKE LOG LINE" + "z" * 500}))
    assert error.request_id is not None
    assert "\n" not in error.request_id
    assert " " not in error.request_id
    assert len(error.request_id) <= 128


def test_non_string_request_id_is_ignored() -> None:
    assert parse(ok(request_id=12)).request_id is None


# -- Retry-After -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("7", 7.0),
        (" 12 ", 12.0),
        ("1.5", 1.5),
        ("0", 0.0),
        ("-5", None),
        ("soon", None),
        ("nan", None),
    ],
)
def test_retry_after_seconds(value: str, seconds: float | None) -> None:
    error = parse_error(response(429, {}, headers={"Retry-After": value}))
    assert error.retry_after == seconds


def test_retry_after_http_date_measured_against_date_header() -> None:
    headers = {
        "Retry-After": "Wed, 21 Oct 2015 07:28:30 GMT",
        "Date": "Wed, 21 Oct 2015 07:28:00 GMT",
    }
    # wall_clock_now is far off: the server's own Date header is the reference.
    error = parse_error(response(503, {}, headers=headers), wall_clock_now=0.0)
    assert error.retry_after == 30.0


def test_retry_after_http_date_without_date_header_uses_wall_clock() -> None:
    headers = {"retry-after": "Wed, 21 Oct 2015 07:28:30 GMT"}
    now = 1445412500.0  # 2015-10-21 07:28:20 UTC
    assert parse_error(response(429, {}, headers=headers), wall_clock_now=now).retry_after == 10.0


def test_retry_after_date_in_the_past_means_now() -> None:
    headers = {"Retry-After": "Wed, 21 Oct 2015 07:28:30 GMT"}
    assert parse_error(response(503, {}, headers=headers), wall_clock_now=2e9).retry_after == 0.0


def test_retry_after_absent_is_none() -> None:
    assert parse_error(response(503, {})).retry_after is None
