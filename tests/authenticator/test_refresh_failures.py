"""Refreshes across the emulator's faults, rejected credentials and source outages."""

from __future__ import annotations

import logging
import threading

import pytest

from n3xt_creds import Credentials, InvalidClientError, TokenRequestError
from n3xt_creds.testing import Emulator, Fault
from tests.authenticator._support import SwitchableSource
from tests.authenticator.conftest import MakeAuth


@pytest.mark.parametrize("fault", list(Fault))
def test_each_transient_fault_is_retried_to_success(
    n3xt_emulator: Emulator, make_auth: MakeAuth, fault: Fault
) -> None:
    auth = make_auth(timeout=0.3)  # a HANG costs one timeout
    n3xt_emulator.inject_fault(fault, retry_after=0)
    assert auth.get_token()
    counts = n3xt_emulator.counters.token_requests
    assert counts[fault.value] == 1
    assert counts["success"] == 1
    assert auth.stats.failures == 0


@pytest.mark.parametrize("fault", [Fault.SERVER_ERROR, Fault.RESET, Fault.GARBAGE_200])
async def test_async_refresh_retries_the_same_faults(
    n3xt_emulator: Emulator, make_auth: MakeAuth, fault: Fault
) -> None:
    auth = make_auth()
    n3xt_emulator.inject_fault(fault, count=2)
    assert await auth.aget_token()
    assert n3xt_emulator.counters.token_requests_total == 3


def test_retries_are_bounded_and_the_error_is_typed(
    n3xt_emulator: Emulator, make_auth: MakeAuth
) -> None:
    auth = make_auth()
    n3xt_emulator.inject_fault(Fault.UNAVAILABLE, count=10)
    with pytest.raises(TokenRequestError) as info:
        auth.get_token()
    assert info.value.status_code == 503
    assert n3xt_emulator.counters.token_requests_total == 6  # FAST_RETRY.max_attempts
    assert auth.stats.failures == 1


def test_rotated_credentials_are_picked_up_on_invalid_client(
    n3xt_emulator: Emulator, make_auth: MakeAuth, creds: Credentials
) -> None:
    new = n3xt_emulator.rotate_client(creds.client_id)  # the old secret is now refused

    class RotatingOnReRead(SwitchableSource):
        def get_credentials(self) -> Credentials:
            served = super().get_credentials()
            self.serve(new)  # the store was updated; the next read sees it
            return served

    source = RotatingOnReRead(creds)
    auth = make_auth(source=source)
    assert auth.get_token()
    assert source.reads == 2
    assert n3xt_emulator.counters.token_requests == {"invalid_client": 1, "success": 1}


def test_credentials_still_rejected_fail_without_a_retry_storm(
    n3xt_emulator: Emulator, make_auth: MakeAuth, creds: Credentials
) -> None:
    n3xt_emulator.rotate_client(creds.client_id)
    auth = make_auth()
    with pytest.raises(InvalidClientError) as info:
        auth.get_token()
    assert info.value.status_code == 401
    assert n3xt_emulator.counters.token_requests == {"invalid_client": 1}


def test_source_outage_uses_the_last_good_credentials(
    n3xt_emulator: Emulator,
    make_auth: MakeAuth,
    source: SwitchableSource,
    caplog: pytest.LogCaptureFixture,
) -> None:
    auth = make_auth()
    old = auth.get_token()
    source.fail()
    auth.invalidate()
    with caplog.at_level(logging.WARNING, logger="n3xt_creds"):
        new = auth.get_token()
    assert new != old
    assert "last good credentials" in caplog.text
    assert n3xt_emulator.counters.token_requests == {"success": 2}


def test_source_outage_before_any_success_is_the_source_error(
    make_auth: MakeAuth, source: SwitchableSource
) -> None:
    source.fail()
    auth = make_auth()
    with pytest.raises(Exception, match="backend down") as info:
        auth.get_token()
    assert type(info.value).__name__ == "SourceError"


async def test_async_source_outage_uses_the_last_good_credentials(
    n3xt_emulator: Emulator, make_auth: MakeAuth, source: SwitchableSource
) -> None:
    auth = make_auth()
    old = await auth.aget_token()
    source.fail()
    auth.invalidate()
    assert await auth.aget_token() != old


def test_every_waiting_caller_gets_the_failure_from_one_refresh(
    n3xt_emulator: Emulator, make_auth: MakeAuth
) -> None:
    auth = make_auth()
    n3xt_emulator.inject_fault(Fault.SERVER_ERROR, count=100)
    n3xt_emulator.latency = 0.1
    errors: list[BaseException] = []

    def call() -> None:
        try:
            auth.get_token()
        except TokenRequestError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(errors) == 20
    # One refresh (6 attempts) shared, or a few if some callers arrived after it ended;
    # never 20 independent refreshes.
    assert n3xt_emulator.counters.token_requests_total < 20 * 6 / 2
    assert n3xt_emulator.counters.max_in_flight == 1
