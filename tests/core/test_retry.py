"""RetryPolicy validation, backoff with full jitter, Retry-After parsing, URL display."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from n3xt_creds import ConfigError, Credentials
from n3xt_creds._core.flow import ReadCredentials, refresh_flow, run_sync
from n3xt_creds._core.retry import RetryPolicy, backoff_delay, parse_retry_after
from n3xt_creds._core.token import Token, display_url, transport_error
from n3xt_creds.testing import ManualClock


def test_default_policy() -> None:
    policy = RetryPolicy()
    assert (policy.max_attempts, policy.base_delay, policy.max_delay, policy.deadline) == (
        5,
        0.1,
        5.0,
        30.0,
    )


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"max_attempts": 0}, "retry.max_attempts"),
        ({"max_attempts": 2.5}, "retry.max_attempts"),
        ({"max_attempts": True}, "retry.max_attempts"),
        ({"base_delay": -1}, "retry.base_delay"),
        ({"max_delay": math.inf}, "retry.max_delay"),
        ({"max_delay": "5"}, "retry.max_delay"),
        ({"deadline": 0}, "retry.deadline"),
        ({"deadline": math.nan}, "retry.deadline"),
    ],
)
def test_bad_policy_is_a_config_error_naming_the_field(kwargs: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
    assert info.value.key == key
    assert key.split(".")[1] in str(info.value)


def test_backoff_grows_exponentially_and_is_capped() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0)
    top = random.Random()
    top.uniform = lambda low, high: high  # type: ignore[method-assign]
    assert [backoff_delay(policy, n, top) for n in range(1, 7)] == [1, 2, 4, 8, 8, 8]


@given(failures=st.integers(1, 10_000), seed=st.integers(0, 2**32))
def test_backoff_is_full_jitter_within_the_cap(failures: int, seed: int) -> None:
    policy = RetryPolicy(base_delay=0.1, max_delay=5.0)
    delay = backoff_delay(policy, failures, random.Random(seed))
    assert 0.0 <= delay <= min(5.0, 0.1 * 2.0 ** min(failures - 1, 100))


def test_backoff_spreads_a_herd() -> None:
    rng = random.Random(7)
    delays = [backoff_delay(RetryPolicy(base_delay=1.0), 1, rng) for _ in range(200)]
    assert min(delays) < 0.1
    assert max(delays) > 0.9


def test_retry_after_with_unparseable_date_header_falls_back_to_now() -> None:
    headers = {"Retry-After": "Wed, 21 Oct 2015 07:28:30 GMT", "Date": "yesterday"}
    assert parse_retry_after(headers, now=1445412500.0) == 10.0


def test_retry_after_date_without_any_reference_is_ignored() -> None:
    assert parse_retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:30 GMT"}) is None


@given(value=st.text(max_size=40), date=st.text(max_size=40))
def test_retry_after_never_raises(value: str, date: str) -> None:
    seconds = parse_retry_after({"Retry-After": value, "Date": date}, now=1.7e9)
    assert seconds is None or (math.isfinite(seconds) and seconds >= 0)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://authn.n3xt.io/v1/token", "https://authn.n3xt.io/v1/token"),
        ("https://user:pw-SECRET@authn.n3xt.io:8443/t", "https://authn.n3xt.io:8443/t"),
        ("http://pw-SECRET@[::1]/t", "http://[::1]/t"),
    ],
)
def test_display_url_drops_userinfo(url: str, shown: str) -> None:
    assert display_url(url) == shown
    assert "SECRET" not in str(transport_error(OSError("x"), url=url))


@pytest.mark.parametrize("expires_in", [0.0, -1.0, math.inf, math.nan])
def test_token_refuses_a_meaningless_lifetime(expires_in: float) -> None:
    with pytest.raises(ValueError, match="expires_in"):
        Token("t", expires_in=expires_in, obtained_at=0.0, refresh_margin=300.0)


def test_run_sync_closes_the_flow_on_base_exception() -> None:
    flow = refresh_flow(
        token_url="https://authn.example.test/t",
        refresh_margin=300.0,
        policy=RetryPolicy(),
        last_good=None,
        clock=ManualClock(),
    )

    def read(action: ReadCredentials) -> Credentials:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sync(flow, read=read, send=None, sleep=None)  # type: ignore[arg-type]
    assert flow.gi_frame is None
