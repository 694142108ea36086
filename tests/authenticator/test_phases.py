"""The token's three phases on an injected clock, against the real emulator.

With the default 3600 s token and 300 s margin a token obtained at t0 is fresh until
t0+3300, stale until t0+3570 and expired after that (it really ends at t0+3600).
"""

from __future__ import annotations

import logging
import threading

import pytest

from n3xt_creds import TokenRequestError
from n3xt_creds.testing import Emulator, Fault, ManualClock
from tests._poll import wait_until
from tests.authenticator.conftest import MakeAuth

STALE = 3300 + 1
EXPIRED = 3570 + 1


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def test_fresh_token_is_reused_without_any_request(
    n3xt_emulator: Emulator, make_auth: MakeAuth, clock: ManualClock
) -> None:
    # Exact phase boundaries: no refresh-point jitter (test_static_stability covers it).
    auth = make_auth(clock=clock, refresh_jitter=0)
    first = auth.get_token()
    clock.advance(STALE - 2)
    assert auth.get_token() == first
    assert auth.headers() == {"Authorization": f"Bearer {first}"}
    assert n3xt_emulator.counters.token_requests_total == 1
    assert auth.stats.phase == "fresh"
    assert auth.stats.refreshes == 1


def test_stale_token_is_returned_at_once_while_a_background_refresh_runs(
    n3xt_emulator: Emulator, make_auth: MakeAuth, clock: ManualClock
) -> None:
    auth = make_auth(clock=clock)
    old = auth.get_token()
    clock.advance(STALE)
    n3xt_emulator.pause()  # the background refresh cannot finish until we resume
    try:
        # Event ordering, not timing: these return while the refresh is held.
        assert auth.get_token() == old
        wait_until(lambda: n3xt_emulator.counters.in_flight == 1, what="background refresh")
        assert [auth.get_token() for _ in range(100)] == [old] * 100
        assert auth.stats.phase == "stale"
    finally:
        n3xt_emulator.resume()
    wait_until(lambda: auth.stats.refreshes == 2, what="background refresh to finish")
    assert auth.get_token() != old
    assert n3xt_emulator.counters.token_requests_total == 2


def test_expired_token_makes_every_caller_wait_for_one_refresh(
    n3xt_emulator: Emulator, make_auth: MakeAuth, clock: ManualClock
) -> None:
    auth = make_auth(clock=clock)
    old = auth.get_token()
    clock.advance(EXPIRED)
    n3xt_emulator.pause()
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(auth.get_token())) for _ in range(20)]
    try:
        for thread in threads:
            thread.start()
        wait_until(lambda: n3xt_emulator.counters.in_flight == 1, what="the refresh")
        assert results == []  # everyone is waiting: the old token is not handed out
    finally:
        n3xt_emulator.resume()
        for thread in threads:
            thread.join(10)
    assert len(results) == 20
    assert len(set(results)) == 1
    assert results[0] != old
    assert n3xt_emulator.counters.token_requests_total == 2


def test_failed_refresh_keeps_a_token_that_is_still_valid(
    n3xt_emulator: Emulator,
    make_auth: MakeAuth,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    auth = make_auth(clock=clock)
    old = auth.get_token()
    clock.advance(EXPIRED)  # in the last 30 s: expired for us, still valid for N3XT
    n3xt_emulator.inject_fault(Fault.SERVER_ERROR, count=6)  # every attempt fails
    with caplog.at_level(logging.WARNING, logger="n3xt_creds"):
        assert auth.get_token() == old
    assert "keeping the current token" in caplog.text
    assert auth.stats.failures == 1
    clock.advance(30)  # now really expired: a failure can no longer be papered over
    n3xt_emulator.inject_fault(Fault.SERVER_ERROR, count=6)
    with pytest.raises(TokenRequestError) as info:
        auth.get_token()
    assert info.value.retryable
    assert info.value.status_code == 500


def test_failed_background_refresh_is_retried_no_sooner_than_30_s(
    n3xt_emulator: Emulator, make_auth: MakeAuth, clock: ManualClock
) -> None:
    auth = make_auth(clock=clock)
    old = auth.get_token()
    clock.advance(STALE)
    n3xt_emulator.inject_fault(Fault.SERVER_ERROR, count=6)
    assert auth.get_token() == old
    wait_until(lambda: auth.stats.failures == 1, what="background refresh to fail")
    requests_after_failure = n3xt_emulator.counters.token_requests_total
    clock.advance(29)
    assert auth.get_token() == old  # still stale, but no new attempt yet
    assert n3xt_emulator.counters.token_requests_total == requests_after_failure
    clock.advance(2)
    assert auth.get_token() == old
    wait_until(lambda: auth.stats.refreshes == 2, what="second background refresh")
    assert auth.get_token() != old


def test_invalidate_forces_a_new_token(n3xt_emulator: Emulator, make_auth: MakeAuth) -> None:
    events: list[str] = []
    auth = make_auth(on_event=lambda event: events.append(event.kind))
    old = auth.get_token()
    auth.invalidate()
    assert auth.stats.phase is None
    assert auth.get_token() != old
    assert events == ["refresh_succeeded", "token_invalidated", "refresh_succeeded"]


def test_stats_report_age_latency_and_counts(make_auth: MakeAuth, clock: ManualClock) -> None:
    auth = make_auth(clock=clock)
    assert auth.stats.token_age is None
    auth.get_token()
    clock.advance(42)
    stats = auth.stats
    assert stats.token_age == pytest.approx(42)
    assert stats.refreshes == 1
    assert stats.failures == 0
    assert stats.last_refresh_seconds is not None


def test_a_broken_event_hook_does_not_break_authentication(
    make_auth: MakeAuth, caplog: pytest.LogCaptureFixture
) -> None:
    def hook(event: object) -> None:
        raise RuntimeError("metrics backend down")

    auth = make_auth(on_event=hook)
    with caplog.at_level(logging.ERROR, logger="n3xt_creds"):
        assert auth.get_token()
    assert "on_event hook raised" in caplog.text
