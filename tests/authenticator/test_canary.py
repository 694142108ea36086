"""Neither the client secret nor any access token shows up anywhere it could leak:
DEBUG logs of every library involved, reprs, events, stats, and exceptions with
their causes — across success, faults, rejection, outage, replay and refusal."""

from __future__ import annotations

import asyncio
import logging
import traceback

import httpx
import pytest
import requests

from n3xt_creds import Credentials
from n3xt_creds._core.cache import COOLDOWN_MAX
from n3xt_creds._core.stats import AuthEvent
from n3xt_creds.adapters.requests import RequestsAuth
from n3xt_creds.testing import Emulator, Fault, ManualClock
from tests._poll import wait_until
from tests.authenticator._support import CANARY_SECRET, SwitchableSource
from tests.authenticator.conftest import MakeAuth


def test_canaries_appear_nowhere(
    n3xt_emulator: Emulator,
    make_auth: MakeAuth,
    source: SwitchableSource,
    creds: Credentials,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tokens: set[str] = set()
    exposed: list[str] = []  # every string a user or operator could see
    events: list[AuthEvent] = []
    clock = ManualClock()

    def expect_failure(call: object) -> None:
        try:
            call()  # type: ignore[operator]
        except Exception as exc:
            exposed.append("".join(traceback.format_exception(exc)))
            exposed.append(repr(exc))
        else:
            raise AssertionError("expected a failure")

    caplog.set_level(logging.DEBUG)
    auth = make_auth(clock=clock, timeout=0.3, on_event=events.append)

    # Success, sync and async, and requests through both adapters.
    tokens.add(auth.get_token())
    tokens.add(asyncio.run(auth.aget_token()))
    with httpx.Client(auth=auth) as client:
        client.get(n3xt_emulator.api_url())
        n3xt_emulator.revoke_tokens()  # 401 then replay
        client.get(n3xt_emulator.api_url())
        tokens.add(auth.get_token())
    with requests.Session() as session:
        session.auth = RequestsAuth(auth)
        n3xt_emulator.revoke_tokens()
        session.get(n3xt_emulator.api_url(), timeout=5)
        tokens.add(auth.get_token())
    exposed += [repr(auth), repr(auth.stats), repr(auth._cell.current), repr(session.auth)]

    # Every fault, then retries exhausted.
    for fault in Fault:
        n3xt_emulator.inject_fault(fault, retry_after=0)
        auth.invalidate()
        tokens.add(auth.get_token())
    n3xt_emulator.inject_fault(Fault.SERVER_ERROR, count=6)
    auth.invalidate()
    expect_failure(auth.get_token)
    expect_failure(auth.get_token)  # the remembered failure, during its cool-down
    clock.advance(COOLDOWN_MAX)  # the cool-down is over: the next call may try again

    # A background refresh that fails, then one that works.
    tokens.add(auth.get_token())
    clock.advance(3301)
    n3xt_emulator.inject_fault(Fault.BAD_GATEWAY_HTML, count=6)
    auth.get_token()
    wait_until(lambda: auth.stats.failures == 2, what="background failure")

    # Source outage (last good credentials), then rejected credentials.
    source.fail()
    auth.invalidate()
    tokens.add(auth.get_token())
    source.fail(False)
    n3xt_emulator.rotate_client(creds.client_id)
    auth.invalidate()
    expect_failure(auth.get_token)
    exposed.append(repr(auth))

    # A request to a host outside api_hosts.
    with httpx.Client(auth=auth, transport=httpx.MockTransport(lambda r: httpx.Response(200))) as c:
        c.get("https://elsewhere.example.com/")

    exposed += [repr(event) for event in events]
    exposed += [
        record.getMessage() for record in caplog.records if record.name != "n3xt_creds.testing"
    ]
    exposed += [
        "".join(traceback.format_exception(*record.exc_info))
        for record in caplog.records
        if record.exc_info
    ]
    text = "\n".join(exposed)
    assert len(tokens) >= 10
    assert "Token refresh" in text  # the logs were really captured
    for canary in (CANARY_SECRET, *tokens):
        assert canary not in text
