"""Token, its three phases and the window computation; the token request."""

from __future__ import annotations

import copy
import json
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from n3xt_creds import Credentials, Secret
from n3xt_creds._core.token import Phase, Token, build_token_request, token_windows
from tests.core._support import CANARY_SECRET, CANARY_TOKEN, TOKEN_URL

# -- windows ---------------------------------------------------------------------------


def test_hour_token_with_default_margin() -> None:
    assert token_windows(0.0, 3600.0, 300.0) == (3300.0, 3570.0, 3600.0)


def test_two_second_token_is_fresh_for_its_first_second() -> None:
    stale_at, expired_at, expires_at = token_windows(10.0, 2.0, 300.0)
    assert stale_at == 11.0
    assert expired_at == pytest.approx(11.8)
    assert expires_at == 12.0


def test_one_minute_token_scales_both_windows() -> None:
    assert token_windows(0.0, 60.0, 300.0) == (30.0, 54.0, 60.0)


def test_margin_below_expiry_margin_makes_stale_and_expired_coincide() -> None:
    stale_at, expired_at, _ = token_windows(0.0, 3600.0, 10.0)
    assert stale_at == expired_at == 3570.0


def test_zero_margin_still_leaves_an_expired_window() -> None:
    assert token_windows(0.0, 3600.0, 0.0) == (3570.0, 3570.0, 3600.0)


@given(
    obtained_at=st.floats(min_value=-1e6, max_value=1e9),
    lifetime=st.floats(min_value=1e-3, max_value=1e7),
    margin=st.floats(min_value=0.0, max_value=1e6),
)
def test_window_invariants(obtained_at: float, lifetime: float, margin: float) -> None:
    stale_at, expired_at, expires_at = token_windows(obtained_at, lifetime, margin)
    # Rounding of obtained_at + x at large magnitudes: allow a few ulps.
    eps = 1e-9 * max(1.0, abs(obtained_at), lifetime)
    assert obtained_at <= stale_at <= expired_at <= expires_at
    assert stale_at >= obtained_at + lifetime / 2
    assert expires_at - expired_at <= 0.1 * lifetime + eps
    # Never later than nominal: the stale phase starts at most `margin` before expiry
    # unless the expiry window needs it earlier, and expiry is at most 30 s early.
    assert expires_at - expired_at <= 30.0 + eps
    assert expires_at - stale_at <= max(margin, 30.0) + eps


# -- phases and the Token object -------------------------------------------------------


def make_token(expires_in: float = 3600.0, obtained_at: float = 0.0) -> Token:
    return Token(
        CANARY_TOKEN,
        expires_in=expires_in,
        obtained_at=obtained_at,
        refresh_margin=300.0,
        request_id="req-1",
    )


@pytest.mark.parametrize(
    ("now", "phase"),
    [
        (0.0, Phase.FRESH),
        (3299.999, Phase.FRESH),
        (3300.0, Phase.STALE),
        (3569.999, Phase.STALE),
        (3570.0, Phase.EXPIRED),
        (3600.0, Phase.EXPIRED),
        (1e9, Phase.EXPIRED),
    ],
)
def test_phase_boundaries(now: float, phase: Phase) -> None:
    assert make_token().phase(now) is phase


def test_token_value_age_and_fields() -> None:
    token = make_token(obtained_at=50.0)
    assert token.value() == CANARY_TOKEN
    assert isinstance(token.access_token, Secret)
    assert token.age(80.0) == 30.0
    assert token.request_id == "req-1"
    assert token.token_type == "bearer"


def test_token_repr_str_and_format_hide_the_value() -> None:
    token = make_token()
    for text in (repr(token), str(token), f"{token}", f"{token!s:>5}", repr([token])):
        assert CANARY_TOKEN not in text
    assert token.access_token.fingerprint in repr(token)


def test_token_is_immutable_and_refuses_pickle() -> None:
    token = make_token()
    with pytest.raises(AttributeError):
        token.expires_at = 1e12  # type: ignore[misc]
    with pytest.raises(TypeError, match="pickle"):
        pickle.dumps(token)
    assert copy.copy(token).value() == CANARY_TOKEN


# -- the request -----------------------------------------------------------------------


def test_token_request_is_n3xt_json_dialect() -> None:
    request = build_token_request(TOKEN_URL, Credentials("client-1", CANARY_SECRET))
    assert request.method == "POST"
    assert request.url == TOKEN_URL
    assert request.headers == {"Content-Type": "application/json", "Accept": "application/json"}
    assert json.loads(request.content) == {
        "client_id": "client-1",
        "client_secret": CANARY_SECRET,
        "grant_type": "client_credentials",
    }


def test_token_request_repr_hides_the_body() -> None:
    request = build_token_request(TOKEN_URL, Credentials("client-1", CANARY_SECRET))
    assert CANARY_SECRET not in repr(request)
    assert CANARY_SECRET not in str(request)
    assert TOKEN_URL in repr(request)


def test_token_request_escapes_json_special_characters() -> None:
    secret = 'we"ird\\sec\nret\u00e9'
    request = build_token_request(TOKEN_URL, Credentials('id"1', secret))
    assert json.loads(request.content)["client_secret"] == secret
    assert json.loads(request.content)["client_id"] == 'id"1'
