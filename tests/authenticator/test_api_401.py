"""A 401 from the API on a request that carried our token: new token, one replay."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import requests

from n3xt_creds import Authenticator
from n3xt_creds.adapters.requests import RequestsAuth
from n3xt_creds.testing import Emulator


def test_httpx_replays_once_after_revocation(n3xt_emulator: Emulator, auth: Authenticator) -> None:
    with httpx.Client(auth=auth) as client:
        assert client.get(n3xt_emulator.api_url()).status_code == 200
        old = auth.get_token()
        n3xt_emulator.revoke_tokens()
        response = client.post(n3xt_emulator.api_url(), json={"amount": 1})
    assert response.status_code == 200
    assert len(response.history) == 1
    assert response.history[0].status_code == 401
    assert auth.get_token() != old
    assert auth.stats.replays == 1
    assert n3xt_emulator.counters.token_requests_total == 2


async def test_httpx_async_replays_once_after_revocation(
    n3xt_emulator: Emulator, auth: Authenticator
) -> None:
    async with httpx.AsyncClient(auth=auth) as client:
        assert (await client.get(n3xt_emulator.api_url())).status_code == 200
        n3xt_emulator.revoke_tokens()
        responses = await asyncio.gather(*(client.get(n3xt_emulator.api_url()) for _ in range(20)))
    assert {r.status_code for r in responses} == {200}
    # Twenty 401s for the same token drop it once and share one new token.
    assert n3xt_emulator.counters.token_requests_total == 2


@pytest.mark.parametrize("wrap", [RequestsAuth, lambda auth: auth], ids=["RequestsAuth", "plain"])
def test_requests_replays_once_after_revocation(
    n3xt_emulator: Emulator, auth: Authenticator, wrap: Callable[[Authenticator], Any]
) -> None:
    # `session.auth = authenticator` works as it is: the Authenticator speaks requests'
    # auth protocol; RequestsAuth is the same behaviour as a requests.auth.AuthBase.
    with requests.Session() as session:
        session.auth = wrap(auth)
        assert session.get(n3xt_emulator.api_url(), timeout=5).status_code == 200
        n3xt_emulator.revoke_tokens()
        response = session.put(n3xt_emulator.api_url(), data=b"payload", timeout=5)
    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [401]
    assert auth.stats.replays == 1
    assert n3xt_emulator.counters.token_requests_total == 2


def test_a_second_401_is_returned_not_replayed_again(
    n3xt_emulator: Emulator, auth: Authenticator
) -> None:
    # Revoke every token as soon as it is issued: the replay is rejected too.
    with httpx.Client(auth=auth) as client:
        assert client.get(n3xt_emulator.api_url()).status_code == 200
        n3xt_emulator.revoke_tokens()
        original_get_token = auth._current_sync

        def get_then_revoke():  # type: ignore[no-untyped-def]
            cached = original_get_token()
            n3xt_emulator.revoke_tokens()
            return cached

        auth._current_sync = get_then_revoke  # type: ignore[method-assign]
        response = client.get(n3xt_emulator.api_url())
    assert response.status_code == 401
    assert len(response.history) == 1
    assert n3xt_emulator.counters.api_calls["revoked_token"] == 2


def test_httpx_streaming_body_is_not_replayed(n3xt_emulator: Emulator, auth: Authenticator) -> None:
    def body() -> Iterator[bytes]:
        yield b"chunk"

    with httpx.Client(auth=auth) as client:
        old = auth.get_token()
        n3xt_emulator.revoke_tokens()
        response = client.post(
            n3xt_emulator.api_url(), content=body(), headers={"Content-Length": "5"}
        )
        assert response.status_code == 401  # cannot be sent twice: the caller decides
        assert auth.get_token() != old  # but the rejected token is gone
        assert client.get(n3xt_emulator.api_url()).status_code == 200


def test_requests_generator_body_is_not_replayed(
    n3xt_emulator: Emulator, auth: Authenticator
) -> None:
    def body() -> Iterator[bytes]:
        yield b"chunk"

    with requests.Session() as session:
        session.auth = RequestsAuth(auth)
        auth.get_token()
        n3xt_emulator.revoke_tokens()
        response = session.post(
            n3xt_emulator.api_url(), data=body(), headers={"Content-Length": "5"}, timeout=5
        )
        assert response.status_code == 401
        assert session.get(n3xt_emulator.api_url(), timeout=5).status_code == 200


def test_a_401_for_an_older_token_does_not_drop_the_current_one(
    n3xt_emulator: Emulator, auth: Authenticator
) -> None:
    old = auth.get_token()
    auth.invalidate()
    current = auth.get_token()
    auth._api_rejected(f"Bearer {old}")
    assert auth.get_token() == current
    assert n3xt_emulator.counters.token_requests_total == 2


def test_httpx_still_takes_the_authenticator_as_an_httpx_auth(
    n3xt_emulator: Emulator, auth: Authenticator
) -> None:
    # httpx checks isinstance(auth, httpx.Auth) before callable(auth): __call__ (the
    # requests protocol) must never be what httpx uses.
    request = httpx.Request("GET", n3xt_emulator.api_url())
    with httpx.Client(auth=auth) as client:
        assert client._build_request_auth(request) is auth
