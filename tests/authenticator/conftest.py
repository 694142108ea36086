"""Fixtures for the authenticator tests: emulator clients and authenticators that get closed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from n3xt_creds import Authenticator, Credentials
from n3xt_creds.testing import Emulator
from tests.authenticator._support import CANARY_SECRET, FAST_RETRY, SwitchableSource


@pytest.fixture
def creds(n3xt_emulator: Emulator) -> Credentials:
    """A client registered on the emulator, with the canary secret."""
    return n3xt_emulator.add_client(client_id="client-auth-tests", client_secret=CANARY_SECRET)


@pytest.fixture
def source(creds: Credentials) -> SwitchableSource:
    return SwitchableSource(creds)


MakeAuth = Callable[..., Authenticator]


@pytest.fixture
def make_auth(n3xt_emulator: Emulator, source: SwitchableSource) -> Iterator[MakeAuth]:
    """Build authenticators against the emulator (fast retries, short timeout); close them all."""
    made: list[Authenticator] = []

    def make(**overrides: Any) -> Authenticator:
        options: dict[str, Any] = {
            "token_url": n3xt_emulator.token_url(),
            "timeout": 2.0,
            "retry": FAST_RETRY,
            # Exact refresh points: these tests step a ManualClock to phase boundaries.
            # Jitter is tested on its own (test_static_stability) by passing it.
            "refresh_jitter": 0.0,
        }
        options.update(overrides)
        auth = Authenticator(options.pop("source", source), **options)
        made.append(auth)
        return auth

    yield make
    for auth in made:
        auth.close()


@pytest.fixture
def auth(make_auth: MakeAuth) -> Authenticator:
    return make_auth()
