"""RedisTokenCache: one token request per fleet, and no failed call whatever Redis does.

Every authenticator here stands for one process (its own in-process cell); the
tests with real processes are in test_fleet_processes.py.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import threading
import time
from typing import Any

import httpx
import pytest

from n3xt_creds import Authenticator, Credentials, RedisTokenCache
from n3xt_creds.testing import Emulator
from n3xt_creds.testing._redis import RedisServer
from tests._poll import wait_until
from tests.authenticator._support import CANARY_SECRET, secret_of
from tests.shared._workers import fleet_worker
from tests.shared.conftest import MakeAuth


def _our_keys(redis_client: Any) -> list[bytes]:
    return sorted(redis_client.keys("n3xt-creds:*"))


def test_a_fleet_shares_one_token(
    make_auth: MakeAuth, redis_cache: RedisTokenCache, n3xt_emulator: Emulator, redis_client: Any
) -> None:
    auths = [make_auth(redis_cache) for _ in range(5)]
    assert len({auth.get_token() for auth in auths}) == 1
    assert n3xt_emulator.tokens_issued == 1
    (entry_key,) = _our_keys(redis_client)  # the lease was released
    assert entry_key.endswith(b":token")
    assert b"client-fleet-tests" not in entry_key
    assert 0 < redis_client.pttl(entry_key) <= 3600 * 1000
    assert auths[0].get_token().encode() not in redis_client.get(entry_key)


def test_concurrent_cold_callers_make_one_token_request(
    make_auth: MakeAuth, redis_cache: RedisTokenCache, n3xt_emulator: Emulator
) -> None:
    n3xt_emulator.latency = 0.2
    auths = [make_auth(redis_cache) for _ in range(8)]
    tokens: list[str] = []
    threads = [threading.Thread(target=lambda a=a: tokens.append(a.get_token())) for a in auths]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert len(tokens) == 8 and len(set(tokens)) == 1
    assert n3xt_emulator.tokens_issued == 1
    stats = [auth.shared_cache_stats for auth in auths]
    assert sum(s.led for s in stats if s) == 1
    assert sum(s.waited for s in stats if s) > 0


async def test_async_callers_share_the_token_without_blocking_the_loop(
    make_auth: MakeAuth, redis_cache: RedisTokenCache, n3xt_emulator: Emulator
) -> None:
    n3xt_emulator.latency = 0.1
    auths = [make_auth(redis_cache) for _ in range(4)]
    tokens = await asyncio.gather(*(auth.aget_token() for auth in auths))
    assert len(set(tokens)) == 1
    assert n3xt_emulator.tokens_issued == 1


def test_a_revoked_token_costs_one_request_per_fleet(
    make_auth: MakeAuth, redis_cache: RedisTokenCache, n3xt_emulator: Emulator
) -> None:
    auths = [make_auth(redis_cache) for _ in range(4)]
    old = {auth.get_token() for auth in auths}
    assert n3xt_emulator.tokens_issued == 1
    n3xt_emulator.revoke_tokens()
    for auth in auths:
        with httpx.Client(auth=auth) as client:
            assert client.get(n3xt_emulator.api_url()).status_code == 200  # replayed once
    new = {auth.get_token() for auth in auths}
    assert len(new) == 1 and new != old
    assert n3xt_emulator.tokens_issued == 2
    assert sum(auth.stats.replays for auth in auths) == 4


def test_a_stale_token_is_refreshed_by_one_process_while_all_keep_serving(
    make_auth: MakeAuth, redis_cache: RedisTokenCache, n3xt_emulator: Emulator
) -> None:
    # 2 s tokens: stale after 1 s, expired after 1.8 s. A few lifetimes under load.
    n3xt_emulator.expires_in = 2
    auths = [make_auth(redis_cache, refresh_margin=1) for _ in range(4)]
    errors: list[BaseException] = []
    stop = time.monotonic() + 4.0

    def hammer(auth: Authenticator) -> None:
        while time.monotonic() < stop:
            try:
                auth.get_token()
            except Exception as error:
                errors.append(error)
            time.sleep(0.005)

    threads = [threading.Thread(target=hammer, args=(auth,)) for auth in auths]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert errors == []
    # One request per lifetime for the fleet (4 s / 1 s of fresh life), not one per process.
    issued = n3xt_emulator.tokens_issued
    assert issued <= 5, issued
    stats = [auth.shared_cache_stats for auth in auths]
    assert sum(s.led + s.fallbacks for s in stats if s) == issued
    assert sum(s.adopted for s in stats if s) >= 3 * (issued - 1)


def test_redis_down_mid_run_fails_no_call(
    make_auth: MakeAuth,
    own_redis: RedisServer,
    n3xt_emulator: Emulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = RedisTokenCache(own_redis.url)
    before = [make_auth(cache) for _ in range(3)]
    assert len({auth.get_token() for auth in before}) == 1
    own_redis.stop()
    caplog.set_level(logging.WARNING, logger="n3xt_creds")
    # Hot path: the cached tokens need no Redis at all.
    assert len({auth.get_token() for auth in before}) == 1
    # New processes and an invalidated one: each refreshes on its own, once.
    after = [make_auth(cache) for _ in range(3)]
    started = time.monotonic()
    assert all(auth.get_token() for auth in after)
    before[0].invalidate()
    assert before[0].get_token()
    assert n3xt_emulator.tokens_issued == 1 + 4
    assert time.monotonic() - started < 5
    for auth in after:
        stats = auth.shared_cache_stats
        assert stats is not None and stats.failures == {"redis_unreachable": 1}
        assert stats.fallbacks == 1
        assert auth.get_token()  # the next call is the hot path: no second request
    assert n3xt_emulator.tokens_issued == 5
    warnings = [r for r in caplog.records if "redis_unreachable" in r.getMessage()]
    assert 1 <= len(warnings) <= 4  # one per process (authenticator), never one per call
    own_redis.restart()
    late = make_auth(cache)
    assert late.get_token()
    assert late.shared_cache_stats is not None and late.shared_cache_stats.published == 1


def test_a_stopped_redis_costs_a_caller_about_one_timeout(
    make_auth: MakeAuth, own_redis: RedisServer, n3xt_emulator: Emulator
) -> None:
    cache = RedisTokenCache(own_redis.url)
    warm = make_auth(cache)
    warm.get_token()  # connects, loads the scripts
    own_redis.pause()  # SIGSTOP: the socket accepts, nothing answers
    try:
        n3xt_emulator.latency = 0.2
        auth = make_auth(cache)
        started = time.monotonic()
        assert auth.get_token()
        elapsed = time.monotonic() - started
        stats = auth.shared_cache_stats
        assert stats is not None and stats.failures == {"redis_timeout": 1}
        # Token latency plus about one 50 ms Redis timeout (generous for a loaded CI box).
        assert elapsed < 0.2 + 0.5, elapsed
    finally:
        own_redis.resume()


def test_a_lease_holder_killed_mid_refresh_delays_the_fleet_only_until_its_lease_ends(
    make_auth: MakeAuth,
    redis_cache: RedisTokenCache,
    redis_server: RedisServer,
    n3xt_emulator: Emulator,
    creds: Credentials,
) -> None:
    # A real process takes the lease and sends its token request, which the emulator
    # holds; the process is SIGKILLed there, its lease (timeout 0.5 s + 2 s) still set.
    context = multiprocessing.get_context("spawn")
    start, results = context.Event(), context.Queue()
    start.set()
    n3xt_emulator.pause()
    client = (n3xt_emulator.token_url(), creds.client_id, secret_of(creds))
    holder = context.Process(
        target=fleet_worker, args=(*client, "redis", redis_server.url, start, results, 0.5)
    )
    holder.start()
    try:
        wait_until(lambda: n3xt_emulator.counters.in_flight == 1, timeout=30, what="the request")
        os.kill(holder.pid or 0, signal.SIGKILL)
        holder.join(10)
    finally:
        n3xt_emulator.resume()
        if holder.is_alive():
            holder.kill()
            holder.join(10)
    waiter = make_auth(redis_cache, timeout=0.5)
    started = time.monotonic()
    assert waiter.get_token()  # no failed call: it waits out the lease, then leads
    elapsed = time.monotonic() - started
    assert elapsed < 4.0, elapsed
    stats = waiter.shared_cache_stats
    assert stats is not None and stats.led == 1 and stats.waited > 0 and stats.fallbacks == 0


def test_flushall_and_garbage_under_our_key_are_survived(
    make_auth: MakeAuth,
    redis_cache: RedisTokenCache,
    n3xt_emulator: Emulator,
    redis_client: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = make_auth(redis_cache)
    token = first.get_token()
    redis_client.flushall()
    assert make_auth(redis_cache).get_token() != token  # nothing there: a new token, published
    assert n3xt_emulator.tokens_issued == 2
    (entry_key,) = _our_keys(redis_client)
    caplog.set_level(logging.WARNING, logger="n3xt_creds")
    redis_client.set(entry_key, b"garbage")
    assert make_auth(redis_cache).get_token()
    redis_client.delete(entry_key)
    redis_client.hset(entry_key, "x", "y")  # not even a string
    assert make_auth(redis_cache).get_token()
    assert redis_client.type(entry_key) == b"string"  # replaced by a sealed entry
    assert n3xt_emulator.tokens_issued == 4
    assert any("entry_garbage" in r.getMessage() for r in caplog.records)


def test_a_rotated_secret_gets_its_own_entry(
    make_auth: MakeAuth,
    redis_cache: RedisTokenCache,
    n3xt_emulator: Emulator,
    redis_client: Any,
    source: Any,
) -> None:
    make_auth(redis_cache).get_token()
    source.serve(n3xt_emulator.rotate_client("client-fleet-tests"))
    rotated = make_auth(redis_cache)
    rotated.get_token()
    assert len([k for k in _our_keys(redis_client) if k.endswith(b":token")]) == 2
    assert n3xt_emulator.tokens_issued == 2


def test_no_secret_token_or_password_in_logs_or_reprs(
    make_auth: MakeAuth, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    password_url = redis_server.url.replace("redis://", "redis://:hunter2-password@")
    cache = RedisTokenCache(password_url)
    auth = make_auth(cache)
    token = auth.get_token()  # fails auth (no password on the server): falls back
    text = caplog.text + repr(cache) + repr(auth) + str(auth.shared_cache_stats)
    for leaked in (CANARY_SECRET, token, "hunter2-password"):
        assert leaked not in text
    assert "127.0.0.1" in repr(cache)


def test_the_url_comes_from_the_environment_variable_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from n3xt_creds import ConfigError

    cache = RedisTokenCache(environ={"REDIS_URL": "redis://:pw@cache.internal:6380/1"})
    assert "cache.internal:6380" in repr(cache) and "pw" not in repr(cache)
    with pytest.raises(ConfigError, match="MY_REDIS"):
        RedisTokenCache(url_var="MY_REDIS", environ={})
    with pytest.raises(ConfigError) as error:
        RedisTokenCache("http://:secretpw@host")
    assert "secretpw" not in str(error.value)


def test_a_full_redis_fails_no_call(
    make_auth: MakeAuth, own_redis: RedisServer, n3xt_emulator: Emulator
) -> None:
    import redis

    admin = redis.Redis.from_url(own_redis.url)
    admin.config_set("maxmemory-policy", "noeviction")
    admin.config_set("maxmemory", "1")  # every write is refused with OOM
    try:
        auths = [make_auth(RedisTokenCache(own_redis.url)) for _ in range(2)]
        assert all(auth.get_token() for auth in auths)
        for auth in auths:
            stats = auth.shared_cache_stats
            assert stats is not None and stats.failures == {"redis_full": 1}
        assert n3xt_emulator.tokens_issued == 2
    finally:
        admin.close()


def test_waiters_poll_when_pub_sub_is_refused_by_an_acl(
    make_auth: MakeAuth,
    own_redis: RedisServer,
    n3xt_emulator: Emulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import redis

    admin = redis.Redis.from_url(own_redis.url)
    # The documented minimal ACL, without the optional pub/sub permissions.
    admin.execute_command(
        "ACL", "SETUSER", "n3xt", "on", ">pw", "~n3xt-creds:*", "resetchannels",
        "+evalsha", "+script|load", "+get", "+set", "+del", "+type",
    )  # fmt: skip
    admin.close()
    url = own_redis.url.replace("redis://", "redis://n3xt:pw@")
    n3xt_emulator.latency = 0.3
    caplog.set_level(logging.WARNING, logger="n3xt_creds")
    auths = [make_auth(RedisTokenCache(url)) for _ in range(3)]
    tokens: list[str] = []
    threads = [threading.Thread(target=lambda a=a: tokens.append(a.get_token())) for a in auths]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert len(tokens) == 3 and len(set(tokens)) == 1
    assert n3xt_emulator.tokens_issued == 1
    assert all(a.shared_cache_stats and not a.shared_cache_stats.failures for a in auths)
    assert any("pub/sub refused" in r.getMessage() for r in caplog.records)


def test_a_redis_cache_refuses_to_be_pickled() -> None:
    import pickle

    cache = RedisTokenCache("redis://:hunter2@127.0.0.1:1/0")
    with pytest.raises(TypeError, match="password") as error:
        pickle.dumps(cache)
    assert "hunter2" not in str(error.value)
