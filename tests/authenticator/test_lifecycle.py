"""Async stale refresh, close/aclose, events and repr once a token is held."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from n3xt_creds import AuthEvent, Secret
from n3xt_creds.testing import Emulator, ManualClock
from tests._poll import wait_until
from tests.authenticator.conftest import MakeAuth


async def test_async_stale_token_is_returned_while_a_background_task_refreshes(
    n3xt_emulator: Emulator, make_auth: MakeAuth
) -> None:
    clock = ManualClock()
    events: list[AuthEvent] = []
    auth = make_auth(clock=clock, on_event=events.append)
    old = await auth.aget_token()
    clock.advance(3301)
    n3xt_emulator.pause()
    try:
        assert await auth.aget_token() == old
        await asyncio.to_thread(
            wait_until, lambda: n3xt_emulator.counters.in_flight == 1, what="background refresh"
        )
        tokens = await asyncio.gather(*(auth.aget_token() for _ in range(50)))
        assert set(tokens) == {old}  # nobody waited for the held refresh
    finally:
        n3xt_emulator.resume()
    await asyncio.to_thread(wait_until, lambda: auth.stats.refreshes == 2, what="refresh")
    assert await auth.aget_token() != old
    assert [e.background for e in events if e.kind == "refresh_succeeded"] == [False, True]
    await auth.aclose()


def test_events_carry_what_metrics_need(n3xt_emulator: Emulator, make_auth: MakeAuth) -> None:
    events: list[AuthEvent] = []
    auth = make_auth(on_event=events.append)
    auth.get_token()
    (event,) = events
    assert event.kind == "refresh_succeeded"
    assert event.attempts == 1
    assert event.expires_in == 3600
    assert event.request_id
    assert event.duration is not None and event.duration >= 0


def test_repr_shows_phase_and_fingerprint_never_the_token(make_auth: MakeAuth) -> None:
    auth = make_auth()
    token = auth.get_token()
    text = repr(auth)
    assert "phase=fresh" in text
    assert Secret(token).fingerprint in text
    assert token not in text


def test_a_closed_authenticator_refuses_new_refreshes(make_auth: MakeAuth) -> None:
    auth = make_auth()
    assert auth.get_token()
    auth.close()
    assert auth.get_token()  # the cached token needs no connection
    auth.invalidate()
    with pytest.raises(RuntimeError, match="was closed"):
        auth.get_token()


async def test_async_context_manager_closes(n3xt_emulator: Emulator, make_auth: MakeAuth) -> None:
    async with make_auth() as auth:
        async with httpx.AsyncClient(auth=auth) as client:
            assert (await client.get(n3xt_emulator.api_url())).status_code == 200
    auth.invalidate()
    with pytest.raises(RuntimeError, match="was closed"):
        await auth.aget_token()


def test_caller_http_client_is_used_and_left_open(
    n3xt_emulator: Emulator, make_auth: MakeAuth
) -> None:
    with httpx.Client() as http_client:
        auth = make_auth(http_client=http_client)
        assert auth.get_token()
        auth.close()
        assert not http_client.is_closed
        assert http_client.get(n3xt_emulator.api_url()).status_code == 401  # no auth here
