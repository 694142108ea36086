"""OpenTelemetry at the shared level: L2 lookups hit or miss, store failures by condition,
with the real SDK (tests/authenticator/_otel.py) and real stores."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from n3xt_creds import FileTokenCache, RedisTokenCache
from n3xt_creds.testing import Emulator
from tests.authenticator._otel import Sdk
from tests.shared.conftest import MakeAuth


@pytest.fixture
def sdk() -> Iterator[Sdk]:
    made = Sdk()
    yield made
    made.shutdown()


@pytest.mark.parametrize("store", ["file", "redis"])
def test_one_process_misses_and_leads_the_others_hit(
    store: str,
    make_auth: MakeAuth,
    sdk: Sdk,
    n3xt_emulator: Emulator,
    request: pytest.FixtureRequest,
) -> None:
    cache: FileTokenCache | RedisTokenCache = request.getfixturevalue(f"{store}_cache")
    auths = [make_auth(cache, **sdk.providers) for _ in range(3)]
    assert len({auth.get_token() for auth in auths}) == 1
    assert n3xt_emulator.tokens_issued == 1

    assert sdk.value("n3xt_creds.cache.lookups", level="shared", result="miss") == 1
    assert sdk.value("n3xt_creds.cache.lookups", level="shared", result="hit") == 2
    assert sdk.value("n3xt_creds.cache.lookups", level="process", result="miss") == 3
    # Adopting a token is not a refresh: one refresh, one token request, one span tree.
    assert sdk.value("n3xt_creds.token.refreshes") == 1
    assert sdk.value("n3xt_creds.token.requests") == 1
    assert sdk.span_names()["n3xt_creds refresh"] == 1
    # Every authenticator holds the token: the gauge shows it once (same attributes).
    assert 0 < sdk.value("n3xt_creds.token.expires_in") <= 3600
    assert not [key for key in sdk.points() if key[0] == "n3xt_creds.cache.failures"]


def test_store_failures_are_counted_by_condition(
    make_auth: MakeAuth, sdk: Sdk, tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)  # not private: the store is not trusted
    auths = [make_auth(FileTokenCache(shared), **sdk.providers) for _ in range(2)]
    assert all(auth.get_token() for auth in auths)
    assert (
        sdk.value("n3xt_creds.cache.failures", level="shared", condition="directory_not_ours") == 2
    )
    # The store was never consulted: no shared lookup, each refreshed on its own.
    assert sdk.value("n3xt_creds.cache.lookups", level="shared") == 0
    assert sdk.value("n3xt_creds.token.refreshes", result="success") == 2
