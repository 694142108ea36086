"""TokenCell at unit level: leader/follower roles and recovery from a lost leader."""

from __future__ import annotations

import logging

import pytest

from n3xt_creds._core.cache import CachedToken, TokenCell
from n3xt_creds._core.token import Token


def token(obtained_at: float = 0.0) -> CachedToken:
    return CachedToken(Token("t" * 20, expires_in=100, obtained_at=obtained_at, refresh_margin=30))


def test_first_caller_leads_and_the_next_follows() -> None:
    cell = TokenCell(abandon_after=60)
    _, flight, leader = cell.join(0.0)
    assert leader
    _, same, follower_leads = cell.join(0.0)
    assert same is flight
    assert not follower_leads


def test_a_caller_arriving_after_the_refresh_takes_its_token() -> None:
    cell = TokenCell(abandon_after=60)
    _, flight, _ = cell.join(0.0)
    assert flight is not None
    new = token()
    cell.finish(flight, new, None, now=0.0)
    found, no_flight, leader = cell.join(1.0)
    assert found is new
    assert no_flight is None
    assert not leader


def test_a_refresh_whose_leader_vanished_is_replaced(caplog: pytest.LogCaptureFixture) -> None:
    # abandon_after=0: every flight already counts as lost (in real use: deadline + timeouts).
    cell = TokenCell(abandon_after=0.0)
    _, lost, _ = cell.join(0.0)
    with caplog.at_level(logging.WARNING, logger="n3xt_creds"):
        _, replacement, leader = cell.join(0.0)
    assert leader
    assert replacement is not lost
    assert "never finished" in caplog.text
    cell.finish(lost, None, None, now=0.0)  # the lost leader waking up late changes nothing
    assert cell.in_flight() is replacement


def test_drop_only_removes_the_named_token() -> None:
    cell = TokenCell(abandon_after=60)
    _, flight, _ = cell.join(0.0)
    assert flight is not None
    current = token()
    cell.finish(flight, current, None, now=0.0)
    assert not cell.drop("Bearer something-else")
    assert cell.current is current
    assert cell.drop(current.header)
    assert cell.current is None
