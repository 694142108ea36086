"""The sans-IO parts of static stability: cool-down schedules, jittered windows, the
token cell's failure memory and API 401 damping — no server, no threads."""

from __future__ import annotations

import random

import pytest

from n3xt_creds import Credentials, InvalidClientError, Secret, TokenRequestError
from n3xt_creds._core.cache import (
    API_COOLDOWN_BASE,
    COOLDOWN_MAX,
    CachedToken,
    TokenCell,
    api_cooldown_seconds,
    cooldown_seconds,
)
from n3xt_creds._core.token import Token, token_windows


class Longest(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return b


def cached(obtained_at: float = 0.0, value: str = "t" * 20) -> CachedToken:
    return CachedToken(Token(value, expires_in=100, obtained_at=obtained_at, refresh_margin=30))


@pytest.mark.parametrize("failures", range(1, 12))
def test_cooldowns_are_full_jitter_under_a_doubling_cap_of_at_most_30_s(failures: int) -> None:
    cap = min(COOLDOWN_MAX, 2.0 ** (failures - 1))
    assert cooldown_seconds(failures, Longest()) == cap
    rng = random.Random(failures)
    draws = [cooldown_seconds(failures, rng) for _ in range(200)]
    assert all(0 <= d <= cap for d in draws)
    assert min(draws) < cap / 4  # full jitter: some come back early


def test_api_cooldowns_never_go_below_half_their_cap() -> None:
    rng = random.Random(7)
    for strikes in range(1, 8):
        cap = min(COOLDOWN_MAX, API_COOLDOWN_BASE * 2 ** (strikes - 1))
        assert all(cap / 2 <= api_cooldown_seconds(strikes, rng) <= cap for _ in range(100))


def test_jitter_moves_the_stale_point_early_but_never_before_half_way() -> None:
    assert token_windows(0.0, 3600.0, 300.0, 0.05) == (3120.0, 3570.0, 3600.0)
    # A 60 s token already goes stale half-way (30 s): it moves later, not past expiry.
    assert token_windows(0.0, 60.0, 300.0, 0.05) == (33.0, 54.0, 60.0)
    assert token_windows(0.0, 60.0, 300.0, 0.5)[0] == 54.0


def test_a_failed_refresh_is_remembered_and_followers_get_a_settled_flight() -> None:
    cell = TokenCell(abandon_after=60, rng=Longest())
    _, flight, leader = cell.join(0.0)
    assert leader and flight is not None
    pair = Credentials("client", Secret("s"))
    flight.credentials = pair
    error = InvalidClientError("rejected", status_code=401, request_id="r-1")
    cell.finish(flight, None, error, now=0.0)
    memory = cell.memory
    assert memory is not None and memory.rejected is pair and memory.cooldown == 1.0
    _, remembered, lead = cell.join(0.1)
    assert remembered is memory.flight and not lead and remembered.done
    copy = memory.error_for_caller(0.1)
    assert type(copy) is InvalidClientError and copy.request_id == "r-1"
    assert "Remembered failure" in str(copy) and str(error) == "rejected"
    # Half-way: one check (re-read the source, send only if it changed), then held off.
    _, check, lead = cell.join(0.5)
    assert lead and check is not None and check.kind == "check" and check.rejected is pair
    cell.finish(check, None, None, now=0.5)
    assert cell.join(0.6)[1] is memory.flight
    # The step is over: one probe.
    _, probe, lead = cell.join(1.0)
    assert lead and probe is not None and probe.kind == "probe"
    assert cell.join(1.0)[1] is memory.flight  # nobody queues behind it
    cell.finish(probe, None, TokenRequestError("down", retryable=True), now=1.0)
    assert cell.memory is not None and cell.memory.failures == 2 and cell.memory.cooldown == 2.0
    # Success ends it.
    _, probe, _ = cell.join(3.0)
    assert probe is not None
    cell.finish(probe, cached(3.0), None, now=3.0)
    assert cell.memory is None


def test_forget_failures_ends_the_memory() -> None:
    cell = TokenCell(abandon_after=60)
    _, flight, _ = cell.join(0.0)
    assert flight is not None
    cell.finish(flight, None, TokenRequestError("down"), now=0.0)
    assert cell.forget_failures() is not None
    assert cell.memory is None
    assert cell.join(0.0)[2]  # the next caller leads a normal refresh at once


def test_api_damping_replaces_a_rejected_token_once_per_cooldown() -> None:
    cell = TokenCell(abandon_after=60, rng=Longest())
    _, flight, _ = cell.join(0.0)
    first = cached()
    assert flight is not None
    cell.finish(flight, first, None, now=0.0)
    verdict = cell.api_rejected(first.header, 0.0)
    assert verdict.replay and verdict.dropped
    _, flight, _ = cell.join(0.0)
    second = cached(value="u" * 20)
    assert flight is not None
    cell.finish(flight, second, None, now=0.0)
    held = cell.api_rejected(second.header, 1.0)
    assert held.passed_through and not held.replay and cell.current is second
    assert cell.api_rejected(first.header, 1.0).replay  # a late 401 for the old one
    again = cell.api_rejected(second.header, API_COOLDOWN_BASE)  # the cool-down is over
    assert again.dropped and again.strikes == 2
    _, flight, _ = cell.join(API_COOLDOWN_BASE)
    third = cached(value="v" * 20)
    assert flight is not None
    cell.finish(flight, third, None, now=API_COOLDOWN_BASE)
    cell.api_accepted(third.header)  # the API took it: the next rejection starts over
    assert cell.api_strikes == 0


def test_a_forked_child_keeps_the_memory_with_a_flight_of_its_own() -> None:
    cell = TokenCell(abandon_after=60, rng=Longest())
    _, flight, _ = cell.join(0.0)
    assert flight is not None
    cell.finish(flight, None, TokenRequestError("down", status_code=503), now=0.0)
    parent = cell.memory
    assert parent is not None
    cell.reset_after_fork()
    child = cell.memory
    assert child is not None and child is not parent
    assert child.flight is not parent.flight and child.flight.done
    assert (child.failures, child.retry_at, child.error) == (1, parent.retry_at, parent.error)
    assert cell.join(0.1)[1] is child.flight  # still remembered in the child


def test_a_replacement_first_refused_after_its_cooldown_is_a_new_revocation() -> None:
    # headers()/invalidate(token) users never report an accepted call: a replacement
    # the API took for a while and then refused must not escalate the damping.
    cell = TokenCell(abandon_after=60, rng=Longest())
    tokens = [cached(value=letter * 20) for letter in "abcd"]
    _, flight, _ = cell.join(0.0)
    assert flight is not None
    cell.finish(flight, tokens[0], None, now=0.0)
    assert cell.api_rejected(tokens[0].header, 0.0).dropped
    _, flight, _ = cell.join(0.0)
    assert flight is not None
    cell.finish(flight, tokens[1], None, now=0.0)
    later = cell.api_rejected(tokens[1].header, 20.0)  # never refused while kept
    assert later.dropped and later.strikes == 1
