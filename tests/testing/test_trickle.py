"""The emulator's trickle mode: whole answers, one byte per interval, over real HTTP."""

from __future__ import annotations

import time

import httpx
import pytest

from n3xt_creds.testing import Emulator
from tests._poll import wait_until

from .conftest import grant_body


def test_a_trickled_answer_is_complete_and_counted_in_flight_until_its_last_byte(
    n3xt_emulator: Emulator,
) -> None:
    creds = n3xt_emulator.add_client()
    n3xt_emulator.trickle_interval = 0.002
    started = time.monotonic()
    with httpx.Client(timeout=1.0) as client:  # each byte comes well within the read timeout
        answer = client.post(n3xt_emulator.token_url(), json=grant_body(creds))
    elapsed = time.monotonic() - started
    assert answer.status_code == 200 and answer.json()["access_token"]
    assert answer.headers["Connection"] == "close"
    raw_length = len(answer.content) + 150  # the status line and headers trickle too
    assert elapsed >= raw_length * 0.002
    # The handler leaves "in flight" just after its last write, which the client may
    # have read first: wait for it rather than race it.
    wait_until(lambda: n3xt_emulator.counters.in_flight == 0, what="the request to settle")
    counters = n3xt_emulator.counters
    assert counters.token_requests == {"success": 1}
    assert counters.max_in_flight == 1


def test_a_client_that_hangs_up_ends_the_trickle(n3xt_emulator: Emulator) -> None:
    creds = n3xt_emulator.add_client()
    n3xt_emulator.trickle_interval = 0.05
    with (
        httpx.Client(timeout=httpx.Timeout(1.0, read=0.01)) as client,
        pytest.raises(httpx.ReadTimeout),
    ):
        client.post(n3xt_emulator.token_url(), json=grant_body(creds))
    wait_until(lambda: n3xt_emulator.counters.in_flight == 0, what="the trickle to stop")


def test_trickle_interval_is_validated_and_reset(n3xt_emulator: Emulator) -> None:
    with pytest.raises(ValueError, match="trickle_interval"):
        n3xt_emulator.trickle_interval = -1
    n3xt_emulator.trickle_interval = 0.5
    n3xt_emulator.reset()
    assert n3xt_emulator.trickle_interval == 0.0
