"""Shared helpers for the emulator tests: a real httpx client and a token-request helper."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from n3xt_creds import Credentials
from n3xt_creds.testing import Emulator

GrantFn = Callable[..., httpx.Response]


def grant_body(creds: Credentials) -> dict[str, Any]:
    """The JSON body N3XT documents for the client-credentials grant."""
    return {
        "client_id": creds.client_id,
        "client_secret": creds.client_secret.get_secret_value(),
        "grant_type": "client_credentials",
    }


@pytest.fixture(scope="session")
def http() -> Iterator[httpx.Client]:
    """A real httpx client, shared (building one costs ~50 ms of TLS setup), thread-safe."""
    with httpx.Client(timeout=5.0) as client:
        yield client


@pytest.fixture
def grant(http: httpx.Client, n3xt_emulator: Emulator) -> GrantFn:
    """POST a client-credentials request for ``creds`` to the emulator's token URL."""

    def _grant(creds: Credentials, **kwargs: Any) -> httpx.Response:
        return http.post(n3xt_emulator.token_url(), json=grant_body(creds), **kwargs)

    return _grant


@pytest.fixture
def token(grant: GrantFn, n3xt_emulator: Emulator) -> str:
    """A valid access token for a fresh client."""
    response = grant(n3xt_emulator.add_client())
    assert response.status_code == 200
    return str(response.json()["access_token"])
