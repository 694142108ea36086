"""parse_token_response over arbitrary input: a Token or a TokenRequestError, nothing else."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from n3xt_creds import TokenRequestError
from n3xt_creds._core.token import Token, TokenResponse, parse_token_response

CANARY = "CANARY-TOKEN-hypothesis"

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
# Bodies close to a token answer, so the field validation paths get exercised too.
plausible_bodies = st.fixed_dictionaries(
    {},
    optional={
        "access_token": st.just(CANARY) | json_values,
        "token_type": st.sampled_from(["bearer", "Bearer", "mac", ""]) | json_values,
        "expires_in": st.sampled_from([3600, 0.5, "60", "x", -1, 0]) | json_values,
        "status_code": st.sampled_from([200, 201, 400, 401, 429, 500, 302]) | json_values,
        "request_id": st.text(max_size=40) | json_values,
        "error": st.sampled_from(["invalid_client", "invalid_request"]) | json_values,
        "error_description": json_values,
    },
)
statuses = st.integers(min_value=100, max_value=599)
headers = st.fixed_dictionaries(
    {},
    optional={
        "Content-Type": st.text(max_size=30),
        "Retry-After": st.text(max_size=30)
        | st.sampled_from(["5", "Wed, 21 Oct 2015 07:28:00 GMT"]),
        "Date": st.text(max_size=30),
        "X-Request-Id": st.text(max_size=30),
    },
)


def outcome(response: TokenResponse) -> Token | TokenRequestError:
    """What parsing gives: a Token, or the TokenRequestError it raised (anything else escapes)."""
    try:
        return parse_token_response(
            response, obtained_at=0.0, refresh_margin=300.0, wall_clock_now=1.7e9
        )
    except TokenRequestError as error:
        return error


def check(response: TokenResponse) -> None:
    result = outcome(response)
    if isinstance(result, TokenRequestError):
        assert CANARY not in str(result)
        assert result.status_code is None or result.status_code >= 100
        assert result.retry_after is None or (
            math.isfinite(result.retry_after) and result.retry_after >= 0
        )
        assert result.request_id is None or (
            result.request_id.isprintable() and len(result.request_id) <= 128
        )
        return
    assert isinstance(result, Token)
    assert 200 <= response.status_code < 300
    assert result.value()
    assert math.isfinite(result.expires_in) and result.expires_in > 0
    assert 0.0 <= result.stale_at <= result.expired_at <= result.expires_at


def encode(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


@settings(max_examples=300)
@given(status=statuses, body=json_values, headers=headers)
def test_arbitrary_json(status: int, body: Any, headers: dict[str, str]) -> None:
    check(TokenResponse(status, headers, encode(body)))


@settings(max_examples=300)
@given(
    status=st.sampled_from([200, 201, 400, 401, 429, 500, 503]) | statuses,
    body=plausible_bodies,
    headers=headers,
)
def test_plausible_token_bodies(status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
    check(TokenResponse(status, headers, encode(body)))


@settings(max_examples=300)
@given(status=statuses, content=st.binary(max_size=200), headers=headers)
def test_arbitrary_bytes(status: int, content: bytes, headers: dict[str, str]) -> None:
    check(TokenResponse(status, headers, content))


def test_a_valid_body_among_them_does_parse() -> None:
    # Guards the property tests against a parser that rejects everything.
    body = {"access_token": CANARY, "token_type": "bearer", "expires_in": 60}
    token = parse_token_response(
        TokenResponse(200, {}, encode(body)), obtained_at=0.0, refresh_margin=300.0
    )
    assert token.value() == CANARY
