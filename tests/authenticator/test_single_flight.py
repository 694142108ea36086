"""One token request however many threads, tasks and event loops ask at once.

The emulator answers token requests after 0.2 s, long enough for every caller to
arrive while the refresh is in flight; its counters say how many requests it saw.
"""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest

from n3xt_creds import Authenticator, N3XTCredsError
from n3xt_creds.testing import Emulator, ManualClock
from tests._poll import await_until, wait_until
from tests.authenticator.conftest import MakeAuth

LATENCY = 0.2


def run_threads(count: int, target: object) -> list[str]:
    """Start ``count`` threads at once on ``target()``; return what they returned."""
    barrier = threading.Barrier(count)
    results: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        barrier.wait()
        try:
            results.append(target())  # type: ignore[operator]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors[:3]
    assert len(results) == count
    return results


def test_200_threads_on_a_cold_token_make_one_request(
    n3xt_emulator: Emulator, auth: Authenticator
) -> None:
    n3xt_emulator.latency = LATENCY
    tokens = run_threads(200, auth.get_token)
    assert len(set(tokens)) == 1
    assert n3xt_emulator.counters.token_requests_total == 1


def test_200_threads_on_an_expired_token_make_one_request(
    n3xt_emulator: Emulator, make_auth: MakeAuth
) -> None:
    clock = ManualClock()
    auth = make_auth(clock=clock)
    old = auth.get_token()
    clock.advance(3600)
    n3xt_emulator.latency = LATENCY
    tokens = run_threads(200, auth.get_token)
    assert set(tokens) != {old}
    assert len(set(tokens)) == 1
    assert n3xt_emulator.counters.token_requests_total == 2


async def test_500_tasks_on_a_cold_token_make_one_request(
    n3xt_emulator: Emulator, auth: Authenticator
) -> None:
    n3xt_emulator.latency = LATENCY
    tokens = await asyncio.gather(*(auth.aget_token() for _ in range(500)))
    assert len(set(tokens)) == 1
    assert n3xt_emulator.counters.token_requests_total == 1


async def test_threads_and_tasks_at_once_make_one_request(
    n3xt_emulator: Emulator, auth: Authenticator
) -> None:
    n3xt_emulator.pause()  # hold the first request until every caller is waiting
    thread_results: list[str] = []
    threads = [
        threading.Thread(target=lambda: thread_results.append(auth.get_token())) for _ in range(100)
    ]
    try:
        for thread in threads:
            thread.start()
        tasks = [asyncio.ensure_future(auth.aget_token()) for _ in range(200)]
        await asyncio.sleep(0)  # let the tasks reach their wait
        await asyncio.to_thread(
            wait_until, lambda: n3xt_emulator.counters.in_flight == 1, what="the refresh"
        )
    finally:
        n3xt_emulator.resume()
    task_results = await asyncio.gather(*tasks)
    await asyncio.to_thread(lambda: [t.join(10) for t in threads])
    assert len(thread_results) == 100
    assert len(set(thread_results) | set(task_results)) == 1
    assert n3xt_emulator.counters.token_requests_total == 1


def test_two_event_loops_in_two_threads_make_one_request(
    n3xt_emulator: Emulator, auth: Authenticator
) -> None:
    n3xt_emulator.latency = LATENCY
    barrier = threading.Barrier(2)

    async def herd() -> list[str]:
        barrier.wait()
        return list(await asyncio.gather(*(auth.aget_token() for _ in range(100))))

    results: list[list[str]] = []
    threads = [
        threading.Thread(target=lambda: results.append(asyncio.run(herd()))) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == 2
    assert len({token for result in results for token in result}) == 1
    assert n3xt_emulator.counters.token_requests_total == 1


async def test_the_event_loop_keeps_running_during_a_refresh(
    n3xt_emulator: Emulator, auth: Authenticator
) -> None:
    # The emulator holds the token answer until resumed: while the refresh is in
    # flight, other tasks on this loop must keep running (no timing bound needed: a
    # blocked loop would never run the ticks the test waits for).
    n3xt_emulator.pause()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    refresh = asyncio.ensure_future(auth.aget_token())
    tick = asyncio.ensure_future(ticker())
    try:
        await await_until(lambda: n3xt_emulator.counters.in_flight == 1, what="token request")
        seen = ticks
        await await_until(lambda: ticks >= seen + 50, what="50 ticks during the refresh")
        assert not refresh.done()
    finally:
        n3xt_emulator.resume()
    assert await refresh
    tick.cancel()


async def test_cancelling_the_caller_does_not_abort_the_shared_refresh(
    n3xt_emulator: Emulator, auth: Authenticator
) -> None:
    n3xt_emulator.pause()
    try:
        leader = asyncio.ensure_future(auth.aget_token())
        await asyncio.to_thread(
            wait_until, lambda: n3xt_emulator.counters.in_flight == 1, what="the refresh"
        )
        follower = asyncio.ensure_future(auth.aget_token())
        await asyncio.sleep(0)
        leader.cancel()
    finally:
        n3xt_emulator.resume()
    assert await follower
    with pytest.raises(asyncio.CancelledError):
        await leader
    assert n3xt_emulator.counters.token_requests_total == 1


async def test_sync_call_inside_the_refreshing_loop_fails_instead_of_deadlocking(
    n3xt_emulator: Emulator, auth: Authenticator
) -> None:
    n3xt_emulator.pause()
    try:
        task = asyncio.ensure_future(auth.aget_token())
        await asyncio.to_thread(
            wait_until, lambda: n3xt_emulator.counters.in_flight == 1, what="the refresh"
        )
        with pytest.raises(N3XTCredsError, match="would deadlock"):
            auth.get_token()
    finally:
        n3xt_emulator.resume()
    assert await task


async def test_httpx_async_client_gets_one_token_for_many_concurrent_calls(
    n3xt_emulator: Emulator, auth: Authenticator
) -> None:
    n3xt_emulator.latency = LATENCY
    async with httpx.AsyncClient(auth=auth) as client:
        responses = await asyncio.gather(*(client.get(n3xt_emulator.api_url()) for _ in range(50)))
    assert {r.status_code for r in responses} == {200}
    assert n3xt_emulator.counters.token_requests_total == 1
