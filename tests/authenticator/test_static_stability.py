"""Static stability against the real emulator: N3XT never sees a storm from us.

Failure memory (a final failure is remembered for a jittered cool-down), the API 401
damping, a deadline that bounds trickled answers, tokens that arrive already expired,
and jittered refresh points. Time moves on a ManualClock; concurrency is shown with
the emulator's pause() and in_flight, never with sleeps.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time

import httpx
import pytest
import requests

from n3xt_creds import (
    AuthenticatorClosedError,
    AuthEvent,
    Credentials,
    EnvSource,
    InvalidClientError,
    N3XTCredsError,
    RetryPolicy,
    TokenRequestError,
)
from n3xt_creds._core.cache import COOLDOWN_BASE, COOLDOWN_MAX
from n3xt_creds.adapters.requests import RequestsAuth
from n3xt_creds.testing import Emulator, Fault, ManualClock
from tests._poll import await_until, wait_until
from tests.authenticator._support import SwitchableSource
from tests.authenticator.conftest import MakeAuth


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


class LongestJitter(random.Random):
    """Every jittered cool-down at its cap: a test that steps through one is exact."""

    def uniform(self, a: float, b: float) -> float:
        return b


def raises_remembered(call: object, kind: type[Exception] = TokenRequestError) -> Exception:
    with pytest.raises(kind) as info:
        call()  # type: ignore[operator]
    assert getattr(info.value, "remembered", False), info.value
    return info.value


# -- failure memory ----------------------------------------------------------------------


def test_a_rejected_secret_is_remembered_callers_get_the_error_without_a_request(
    n3xt_emulator: Emulator, make_auth: MakeAuth, creds: Credentials, clock: ManualClock
) -> None:
    events: list[AuthEvent] = []
    n3xt_emulator.rotate_client(creds.client_id)  # the source still serves the old secret
    auth = make_auth(clock=clock, on_event=events.append)
    with pytest.raises(InvalidClientError) as first:
        auth.get_token()
    assert not getattr(first.value, "remembered", False)  # this call really tried
    for _ in range(50):
        error = raises_remembered(auth.get_token, InvalidClientError)
    assert n3xt_emulator.counters.token_requests == {"invalid_client": 1}
    message = str(error)
    assert "Remembered failure" in message and "next token request is allowed in" in message
    assert "failed 1 time(s) in a row since" in message
    assert "invalidate()" in message  # how to end it
    assert error.status_code == 401 and error.request_id == first.value.request_id  # type: ignore[attr-defined]
    assert 0 < error.next_attempt_in <= COOLDOWN_BASE  # type: ignore[attr-defined]
    assert error.__cause__ is None and error.__context__ is None
    stats = auth.stats
    assert stats.cooldowns_started == 1
    assert stats.remembered_failures_served == 50
    assert stats.cooldown_remaining is not None and stats.cooldown_remaining <= COOLDOWN_BASE
    kinds = [event.kind for event in events]
    assert kinds.count("cooldown_started") == 1
    assert kinds.count("remembered_failure_served") == 50
    started = next(event for event in events if event.kind == "cooldown_started")
    assert started.error == "InvalidClientError" and started.failures == 1
    assert started.cooldown is not None and 0 <= started.cooldown <= COOLDOWN_BASE


async def test_async_callers_get_the_remembered_failure_too(
    n3xt_emulator: Emulator, make_auth: MakeAuth, creds: Credentials, clock: ManualClock
) -> None:
    n3xt_emulator.rotate_client(creds.client_id)
    auth = make_auth(clock=clock)
    with pytest.raises(InvalidClientError):
        await auth.aget_token()
    results = await asyncio.gather(*(auth.aget_token() for _ in range(20)), return_exceptions=True)
    assert all(isinstance(r, InvalidClientError) and r.remembered for r in results)  # type: ignore[attr-defined]
    assert n3xt_emulator.counters.token_requests_total == 1


def test_cooldowns_grow_with_each_failure_up_to_30_s_one_probe_request_each(
    n3xt_emulator: Emulator, make_auth: MakeAuth, clock: ManualClock
) -> None:
    auth = make_auth(clock=clock)
    n3xt_emulator.inject_fault(Fault.UNAVAILABLE, count=1000)
    with pytest.raises(TokenRequestError):
        auth.get_token()
    assert n3xt_emulator.counters.token_requests_total == 6  # one full retry cycle
    for failures in range(2, 10):
        remaining = auth.stats.cooldown_remaining
        assert remaining is not None
        clock.advance(remaining)
        with pytest.raises(TokenRequestError) as probe:
            auth.get_token()  # the cool-down is over: one probe, one request
        assert not getattr(probe.value, "remembered", False)
        assert n3xt_emulator.counters.token_requests_total == 6 + failures - 1
        raises_remembered(auth.get_token)  # and the next caller is held off again
        cap = min(COOLDOWN_MAX, COOLDOWN_BASE * 2 ** (failures - 1))
        assert 0 <= auth.stats.cooldown_remaining <= cap  # type: ignore[operator]
    assert auth.stats.cooldowns_started == 9
    # The endpoint recovers: the next probe succeeds and the memory ends.
    n3xt_emulator.reset()
    n3xt_emulator.add_client(  # reset() forgot the client: register the same pair again
        auth.source.get_credentials().client_id,  # type: ignore[attr-defined]
        auth.source.get_credentials().client_secret,  # type: ignore[attr-defined]
    )
    clock.advance(COOLDOWN_MAX)
    assert auth.get_token()
    assert auth.stats.cooldown_remaining is None
    assert n3xt_emulator.counters.token_requests == {"success": 1}


def test_new_credentials_at_the_source_end_the_memory_half_way_through_a_step(
    n3xt_emulator: Emulator,
    make_auth: MakeAuth,
    source: SwitchableSource,
    creds: Credentials,
    clock: ManualClock,
) -> None:
    n3xt_emulator.rotate_client(creds.client_id)
    auth = make_auth(clock=clock)
    auth._cell._rng = LongestJitter()
    with pytest.raises(InvalidClientError):
        auth.get_token()
    reads = source.reads  # the read and the invalid_client re-read
    remaining = auth.stats.cooldown_remaining
    assert remaining is not None
    raises_remembered(auth.get_token, InvalidClientError)
    assert source.reads == reads  # before the step's half-way point: no re-read
    clock.advance(remaining / 2)
    raises_remembered(auth.get_token, InvalidClientError)  # the check: same pair, no request
    assert source.reads == reads + 1
    raises_remembered(auth.get_token, InvalidClientError)
    assert source.reads == reads + 1  # at most one re-read per cool-down step
    assert n3xt_emulator.counters.token_requests_total == 1

    clock.advance(remaining / 2)  # end of step 1: one probe, the same pair, step 2
    with pytest.raises(InvalidClientError):
        auth.get_token()
    assert n3xt_emulator.counters.token_requests_total == 2

    # The operator fixes the secret: the step's check picks it up before the step ends.
    source.serve(n3xt_emulator.rotate_client(creds.client_id))
    remaining = auth.stats.cooldown_remaining
    assert remaining is not None
    clock.advance(remaining / 2)
    assert auth.get_token()  # the check saw a new pair: tried at once, before the step ends
    assert auth.stats.cooldown_remaining is None


def test_invalidate_ends_the_memory_at_once(
    n3xt_emulator: Emulator, make_auth: MakeAuth, clock: ManualClock
) -> None:
    events: list[str] = []
    auth = make_auth(clock=clock, on_event=lambda e: events.append(f"{e.kind}:{e.reason}"))
    n3xt_emulator.inject_fault(Fault.SERVER_ERROR, count=6)
    with pytest.raises(TokenRequestError):
        auth.get_token()
    raises_remembered(auth.get_token)
    assert auth.invalidate() is True
    assert auth.stats.cooldown_remaining is None
    assert auth.get_token()
    assert "cooldown_ended:invalidate" in events


def test_a_still_valid_token_keeps_being_served_during_the_cooldown(
    n3xt_emulator: Emulator, make_auth: MakeAuth, clock: ManualClock
) -> None:
    auth = make_auth(clock=clock)
    old = auth.get_token()
    clock.advance(3571)  # expired for us (last 30 s), still valid for N3XT
    n3xt_emulator.inject_fault(Fault.SERVER_ERROR, count=6)
    assert auth.get_token() == old
    requests_made = n3xt_emulator.counters.token_requests_total
    assert [auth.get_token() for _ in range(20)] == [old] * 20
    assert n3xt_emulator.counters.token_requests_total == requests_made  # no storm
    assert auth.stats.remembered_failures_served == 0  # nobody got an error


def test_callers_do_not_queue_behind_a_probe(
    n3xt_emulator: Emulator, make_auth: MakeAuth, clock: ManualClock
) -> None:
    auth = make_auth(clock=clock)
    n3xt_emulator.inject_fault(Fault.SERVER_ERROR, count=6)
    with pytest.raises(TokenRequestError):
        auth.get_token()
    clock.advance(COOLDOWN_MAX)
    n3xt_emulator.pause()
    probe: list[str] = []
    leader = threading.Thread(target=lambda: probe.append(auth.get_token()))
    try:
        leader.start()
        wait_until(lambda: n3xt_emulator.counters.in_flight == 1, what="the probe")
        raises_remembered(auth.get_token)  # at once, while the probe is held
        assert n3xt_emulator.counters.in_flight == 1
    finally:
        n3xt_emulator.resume()
        leader.join(10)
    assert probe and probe[0] == auth.get_token()


# -- deadlines -----------------------------------------------------------------------------

TRICKLE_RETRY = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02, deadline=0.5)


def test_a_trickled_answer_ends_at_the_deadline_with_one_request_in_flight(
    n3xt_emulator: Emulator, make_auth: MakeAuth
) -> None:
    auth = make_auth(timeout=1.0, retry=TRICKLE_RETRY)
    n3xt_emulator.trickle_interval = 0.05  # every byte within the 1 s read timeout
    errors: list[BaseException] = []
    ended: list[float] = []
    started = time.monotonic()

    def call() -> None:
        try:
            auth.get_token()
        except TokenRequestError as exc:
            errors.append(exc)
        ended.append(time.monotonic() - started)

    threads = [threading.Thread(target=call) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(errors) == 5
    assert max(ended) < TRICKLE_RETRY.deadline + 1.0  # the deadline bounds every caller
    assert "deadline" in str(errors[0])
    assert n3xt_emulator.counters.max_in_flight == 1
    wait_until(lambda: n3xt_emulator.counters.in_flight == 0, what="the trickle to be cut")


async def test_a_trickled_answer_ends_at_the_deadline_async(
    n3xt_emulator: Emulator, make_auth: MakeAuth
) -> None:
    auth = make_auth(timeout=1.0, retry=TRICKLE_RETRY)
    n3xt_emulator.trickle_interval = 0.05
    started = time.monotonic()
    results = await asyncio.gather(*(auth.aget_token() for _ in range(5)), return_exceptions=True)
    assert time.monotonic() - started < TRICKLE_RETRY.deadline + 1.0
    assert all(isinstance(r, TokenRequestError) for r in results), results
    assert n3xt_emulator.counters.max_in_flight == 1
    await await_until(lambda: n3xt_emulator.counters.in_flight == 0, what="trickle cut")


def test_a_slow_but_complete_trickle_within_the_deadline_still_succeeds(
    n3xt_emulator: Emulator, make_auth: MakeAuth
) -> None:
    auth = make_auth(timeout=1.0)
    n3xt_emulator.trickle_interval = 0.001
    assert auth.get_token()
    assert n3xt_emulator.counters.token_requests_total == 1


def test_a_token_that_arrives_expired_is_handed_out_not_requested_again(
    n3xt_emulator: Emulator,
    make_auth: MakeAuth,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    events: list[AuthEvent] = []
    auth = make_auth(clock=clock, on_event=events.append)
    n3xt_emulator.expires_in = 1
    n3xt_emulator.pause()
    got: list[str] = []
    caller = threading.Thread(target=lambda: got.append(auth.get_token()))
    with caplog.at_level(logging.WARNING, logger="n3xt_creds"):
        try:
            caller.start()
            wait_until(lambda: n3xt_emulator.counters.in_flight == 1, what="the request")
            clock.advance(1.5)  # the round trip outlasts the token's 1 s life
        finally:
            n3xt_emulator.resume()
            caller.join(10)
    assert got, "get_token() must return after one round trip"
    assert n3xt_emulator.counters.token_requests_total == 1
    assert "expires_in=1 s" in caplog.text and "round trip took 1.500 s" in caplog.text
    late = [e for e in events if e.kind == "token_expired_on_arrival"]
    assert len(late) == 1 and late[0].expires_in == 1 and late[0].duration == pytest.approx(1.5)


# -- API 401 damping -------------------------------------------------------------------------


def revoke_every_new_token(n3xt_emulator: Emulator) -> object:
    """An on_event hook: the API refuses every token N3XT issues (wrong audience, say)."""

    def hook(event: AuthEvent) -> None:
        if event.kind == "refresh_succeeded":
            n3xt_emulator.revoke_tokens()

    return hook


def test_an_api_that_refuses_every_token_gets_one_replacement_per_cooldown(
    n3xt_emulator: Emulator,
    make_auth: MakeAuth,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    auth = make_auth(clock=clock, on_event=revoke_every_new_token(n3xt_emulator))
    with (
        caplog.at_level(logging.WARNING, logger="n3xt_creds"),
        httpx.Client(auth=auth) as client,
    ):
        statuses = [client.get(n3xt_emulator.api_url()).status_code for _ in range(20)]
        assert statuses == [401] * 20
        # The first token, and one replacement: then the 401s go to the caller.
        assert n3xt_emulator.counters.token_requests_total == 2
        assert auth.stats.api_401s_passed_through == 19
        assert "project, scope or audience" in caplog.text
        clock.advance(COOLDOWN_MAX)  # the replacement's cool-down is over: one more try
        assert client.get(n3xt_emulator.api_url()).status_code == 401
        assert n3xt_emulator.counters.token_requests_total == 3
        assert client.get(n3xt_emulator.api_url()).status_code == 401
        assert n3xt_emulator.counters.token_requests_total == 3


def test_requests_adapter_damps_the_same_way(
    n3xt_emulator: Emulator, make_auth: MakeAuth, clock: ManualClock
) -> None:
    auth = make_auth(clock=clock, on_event=revoke_every_new_token(n3xt_emulator))
    with requests.Session() as session:
        session.auth = RequestsAuth(auth)
        statuses = [session.get(n3xt_emulator.api_url(), timeout=5).status_code for _ in range(20)]
    assert statuses == [401] * 20
    assert n3xt_emulator.counters.token_requests_total == 2
    assert auth.stats.api_401s_passed_through == 19


def test_revocations_separated_by_accepted_calls_are_each_replayed(
    n3xt_emulator: Emulator, make_auth: MakeAuth, clock: ManualClock
) -> None:
    auth = make_auth(clock=clock)
    with httpx.Client(auth=auth) as client:
        for _ in range(4):  # no clock movement: the damping must not hold these back
            assert client.get(n3xt_emulator.api_url()).status_code == 200
            n3xt_emulator.revoke_tokens()
            assert client.get(n3xt_emulator.api_url()).status_code == 200  # replayed
    assert n3xt_emulator.counters.token_requests_total == 5
    assert auth.stats.replays == 4
    assert auth.stats.api_401s_passed_through == 0


def test_invalidate_with_a_token_drops_only_that_token_and_says_whether_to_retry(
    n3xt_emulator: Emulator, make_auth: MakeAuth, clock: ManualClock
) -> None:
    auth = make_auth(clock=clock)
    first = auth.get_token()
    assert auth.invalidate(first) is True  # dropped: retry with a new one
    second = auth.get_token()
    assert second != first
    assert auth.invalidate(first) is True  # a late 401 for the old token: already replaced
    assert auth.get_token() == second  # and the current one was not dropped
    assert auth.invalidate(second) is False  # the replacement refused too: hand on the 401
    assert auth.get_token() == second
    assert n3xt_emulator.counters.token_requests_total == 2
    assert auth.stats.api_401s_passed_through == 1
    with pytest.raises(TypeError):
        auth.invalidate(b"bytes")  # type: ignore[arg-type]


# -- refresh jitter, closed ---------------------------------------------------------------------


def test_refresh_points_are_jittered_per_token_within_a_few_percent(
    make_auth: MakeAuth, source: SwitchableSource, clock: ManualClock
) -> None:
    stale_points = []
    for _ in range(20):
        auth = make_auth(clock=clock, refresh_jitter=0.05)
        auth.get_token()
        cached = auth._cell.current
        assert cached is not None
        stale_points.append(cached.stale_at - cached.token.obtained_at)
    assert all(3300 - 0.05 * 3600 <= point <= 3300 for point in stale_points)
    assert len(set(stale_points)) > 10  # not in step


@pytest.mark.parametrize("bad", [-0.1, 0.5, True, "0.05"])
def test_refresh_jitter_is_validated(make_auth: MakeAuth, bad: object) -> None:
    with pytest.raises(N3XTCredsError, match="refresh_jitter"):
        make_auth(refresh_jitter=bad)


def test_use_after_close_is_a_typed_error(make_auth: MakeAuth) -> None:
    auth = make_auth()
    auth.close()
    with pytest.raises(AuthenticatorClosedError, match="was closed") as info:
        auth.get_token()
    assert isinstance(info.value, N3XTCredsError) and isinstance(info.value, RuntimeError)
    with pytest.raises(AuthenticatorClosedError):
        auth.get_token()  # never remembered as a token endpoint failure


def test_a_cheap_source_is_rechecked_at_every_call_so_a_fixed_secret_works_at_once(
    n3xt_emulator: Emulator, make_auth: MakeAuth, creds: Credentials, clock: ManualClock
) -> None:
    environ = {"N3XT_CLIENT_ID": creds.client_id, "N3XT_CLIENT_SECRET": "not-the-secret"}
    auth = make_auth(clock=clock, source=EnvSource(environ=environ))
    with pytest.raises(InvalidClientError):
        auth.get_token()
    for _ in range(5):
        raises_remembered(auth.get_token, InvalidClientError)
    assert n3xt_emulator.counters.token_requests_total == 1  # re-read, but nothing sent
    environ["N3XT_CLIENT_SECRET"] = creds.client_secret.get_secret_value()
    assert auth.get_token()  # no clock movement: the very next call tries the new pair
    assert n3xt_emulator.counters.token_requests == {"invalid_client": 1, "success": 1}
