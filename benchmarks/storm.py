"""Storms: what N3XT sees from us in bad weather (run.py, section 9; issue 10).

Each scenario runs against the bundled emulator over real HTTP, twice in the same
run: with static stability (the default) and with it switched off through private
knobs (failure memory, API 401 damping, refresh jitter), which is the behaviour before
it. Time runs on a scaled clock: the injected clock runs ``SPEED`` times faster than
the wall clock, so "30 s" of cool-downs, deadlines and token phases pass in 30/SPEED
real seconds. Retry backoff sleeps are real (they are short), so the scaled runs are, if
anything, harsher than real time for the baseline. Targets are issue 10's.

(a) wrong secret (the source keeps serving the old one), 50 callers looping for 30 s;
(b) token endpoint answering 503 for 60 s then healthy, 50 callers, no cached token;
(c) an API that answers 401 to every token, 10 callers looping for 30 s (httpx);
(d) 1,000 authenticators of one fleet going stale: most token requests in flight (the
    fleet's clock crosses the stale window in 2 s steps; the refreshes due in a step
    start together, each instance on its own connection);
(e) an answer trickled 1 byte per 0.2 s (timeout=1, deadline=2), sync and async;
(f) ``expires_in`` (1 s) shorter than the round trip (1.2 s).

Run alone with ``python benchmarks/storm.py``.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
from _common import StaticSource

from n3xt_creds import (
    Authenticator,
    AuthEvent,
    N3XTCredsError,
    RetryPolicy,
    TokenRequestError,
)
from n3xt_creds.testing import Emulator

SPEED = 10.0  # injected seconds per real second
FLEET_STEP = 2.0  # (d): refreshes due within the same 2 s of fleet time start together
# The default RetryPolicy on the scaled clock: backoff sleeps are real seconds, so they
# shrink by SPEED to keep the same proportion to the 30 s deadline (injected).
SCALED_RETRY = RetryPolicy(base_delay=0.1 / SPEED, max_delay=5.0 / SPEED, deadline=30.0)


class ScaledClock:
    """Monotonic seconds running ``speed`` times faster than the wall clock; it can be
    held still (``freeze``) and restarted from any reading (``run_from``)."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self._base = 0.0
        self._base_real = time.monotonic()
        self._frozen = False

    def __call__(self) -> float:
        if self._frozen:
            return self._base
        return self._base + (time.monotonic() - self._base_real) * self.speed

    def freeze(self, at: float) -> None:
        self._base, self._frozen = at, True

    def run_from(self, at: float) -> None:
        self._base, self._base_real, self._frozen = at, time.monotonic(), False


def _baseline(auth: Authenticator) -> Authenticator:
    """Switch static stability off: the behaviour before it, for the side-by-side column."""
    auth._cell._failure_memory = False
    auth._cell._api_damping = False
    return auth


def _loop_callers(
    count: int, until: Callable[[], bool], call: Callable[[], object]
) -> list[tuple[float, bool]]:
    """``count`` threads call ``call()`` until ``until()``; each call's (seconds, failed)."""
    results: list[tuple[float, bool]] = []
    lock = threading.Lock()

    def worker() -> None:
        mine: list[tuple[float, bool]] = []
        while not until():
            started = time.perf_counter()
            failed = False
            try:
                call()
            except N3XTCredsError:
                failed = True
            mine.append((time.perf_counter() - started, failed))
            time.sleep(0.001)  # a service does some work between calls
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def _p99(values: list[float]) -> float:
    if len(values) < 2:
        return max(values, default=0.0)
    return statistics.quantiles(values, n=100)[98]


# -- (a) wrong secret ------------------------------------------------------------------------


def wrong_secret(emulator: Emulator, *, stable: bool, seconds: float) -> dict[str, Any]:
    emulator.reset()
    creds = emulator.add_client()
    emulator.rotate_client(creds.client_id)  # N3XT refuses the pair the source serves
    clock = ScaledClock(SPEED)
    auth = Authenticator(
        StaticSource(creds), token_url=emulator.token_url(), clock=clock, retry=SCALED_RETRY
    )
    if not stable:
        _baseline(auth)
    results = _loop_callers(50, lambda: clock() >= seconds, auth.get_token)
    auth.close()
    answered = [s for s, _ in results[50:]]  # after the first failure (one per caller)
    return {
        "token_requests": emulator.counters.token_requests_total,
        "calls": len(results),
        "p99_ms": _p99(answered) * 1000,
        "max_ms": max(answered, default=0.0) * 1000,
        "over_5ms": sum(1 for s in answered if s > 0.005),
    }


# -- (b) 503 then healthy --------------------------------------------------------------------


def outage(emulator: Emulator, *, stable: bool, outage_s: float, after_s: float) -> dict[str, Any]:
    emulator.reset()
    creds = emulator.add_client()
    emulator.inject_fault(_unavailable(), count=1_000_000)
    clock = ScaledClock(SPEED)
    auth = Authenticator(
        StaticSource(creds), token_url=emulator.token_url(), clock=clock, retry=SCALED_RETRY
    )
    if not stable:
        _baseline(auth)
    during: list[int] = []
    recovered_at: list[float] = []
    first_success: list[float] = []
    blocked: list[float] = []
    lock = threading.Lock()

    def call() -> None:
        started = clock()
        try:
            auth.get_token()
        finally:
            with lock:
                blocked.append(clock() - started)
        with lock:
            if recovered_at and not first_success:
                first_success.append(clock() - recovered_at[0])

    def recover() -> None:
        while clock() < outage_s:
            time.sleep(0.01)
        during.append(emulator.counters.token_requests_total)
        emulator.reset()  # forgets the queued 503s (and the client: register it again)
        emulator.add_client(creds.client_id, creds.client_secret)
        recovered_at.append(clock())

    switch = threading.Thread(target=recover)
    switch.start()
    _loop_callers(50, lambda: clock() >= outage_s + after_s, call)
    switch.join()
    auth.close()
    deadline = auth.retry.deadline
    return {
        "outage_requests": during[0],
        "first_success_s": first_success[0] if first_success else None,
        "blocked_over_deadline": sum(1 for b in blocked if b > deadline + 1),
        "longest_wait_s": max(blocked, default=0.0),
    }


def _unavailable() -> Any:
    from n3xt_creds.testing import Fault

    return Fault.UNAVAILABLE


# -- (c) the API refuses every token ---------------------------------------------------------


def api_401(emulator: Emulator, *, stable: bool, seconds: float) -> dict[str, Any]:
    emulator.reset()
    creds = emulator.add_client()
    clock = ScaledClock(SPEED)

    def refuse_every_token(event: AuthEvent) -> None:
        if event.kind == "refresh_succeeded":
            emulator.revoke_tokens()  # N3XT issues it, the API refuses it

    auth = Authenticator(
        StaticSource(creds),
        token_url=emulator.token_url(),
        clock=clock,
        retry=SCALED_RETRY,
        on_event=refuse_every_token,
    )
    if not stable:
        _baseline(auth)
    clients = threading.local()

    def call() -> None:
        client = getattr(clients, "client", None)
        if client is None:
            client = clients.client = httpx.Client(auth=auth)
        client.get(emulator.api_url())

    _loop_callers(10, lambda: clock() >= seconds, call)
    auth.close()
    counters = emulator.counters
    return {
        "token_requests": counters.token_requests_total,
        "api_calls": counters.api_calls_total,
        "passed_through": auth.stats.api_401s_passed_through,
    }


# -- (d) a fleet going stale -----------------------------------------------------------------


def fleet(emulator: Emulator, *, stable: bool, size: int, latency: float) -> dict[str, Any]:
    """``size`` instances that got their tokens together, each with its own connection
    (as the processes of a fleet have), serving traffic while their clock crosses the
    stale window in steps of ``STEP`` seconds: at each step every instance is called
    once (the stale ones start their background refresh), and the step ends when
    those refreshes are done. Refreshes due within the same step count as simultaneous.
    """
    emulator.reset()
    creds = emulator.add_client()
    clock = ScaledClock(1.0)
    clock.freeze(0.0)  # the whole fleet got its tokens together
    # One connection each: the process-wide pool (10 connections) would otherwise queue
    # this process's refreshes and hide a herd that separate processes would make.
    tls = ssl.create_default_context()
    clients = [httpx.Client(verify=tls) for _ in range(size)]
    auths = [
        Authenticator(
            StaticSource(creds),
            token_url=emulator.token_url(),
            clock=clock,
            refresh_jitter=0.05 if stable else 0.0,
            http_client=client,
        )
        for client in clients
    ]
    for auth in auths:  # cold tokens one by one: this scenario is about going stale
        auth.get_token()
    emulator.latency = latency
    before = emulator.counters.token_requests_total
    now = 3300 - 0.05 * 3600 - FLEET_STEP  # just before the earliest jittered stale point
    started = time.monotonic()
    while now < 3300 + FLEET_STEP and time.monotonic() - started < 120:
        now += FLEET_STEP
        clock.freeze(now)
        for auth in auths:
            auth.get_token()
        while any(auth._cell.in_flight() is not None for auth in auths):
            time.sleep(0.005)
    counters = emulator.counters
    for auth in auths:
        auth.close()
    for client in clients:
        client.close()
    return {
        "refreshes": counters.token_requests_total - before,
        "max_in_flight": counters.max_in_flight,
    }


# -- (e) trickle, (f) late token -------------------------------------------------------------


def trickle(emulator: Emulator) -> dict[str, Any]:
    emulator.reset()
    creds = emulator.add_client()
    retry = RetryPolicy(deadline=2.0)
    out: dict[str, Any] = {}
    for mode in ("sync", "async"):
        emulator.reset()
        emulator.add_client(creds.client_id, creds.client_secret)
        emulator.trickle_interval = 0.2
        auth = Authenticator(
            StaticSource(creds), token_url=emulator.token_url(), timeout=1.0, retry=retry
        )
        started = time.monotonic()
        error = ""
        try:
            if mode == "sync":
                auth.get_token()
            else:
                asyncio.run(auth.aget_token())
        except TokenRequestError as exc:
            error = type(exc).__name__
        out[mode] = (time.monotonic() - started, error, emulator.counters.max_in_flight)
        auth.close()
    emulator.reset()
    return out


def late_token(emulator: Emulator) -> dict[str, Any]:
    emulator.reset()
    creds = emulator.add_client()
    emulator.expires_in = 1
    emulator.latency = 1.2
    auth = Authenticator(StaticSource(creds), token_url=emulator.token_url())
    started = time.monotonic()
    auth.get_token()
    elapsed = time.monotonic() - started
    requests = emulator.counters.token_requests_total
    auth.close()
    emulator.reset()
    return {"seconds": elapsed, "token_requests": requests}


# -- the table ------------------------------------------------------------------------------


def run(quick: bool = False) -> list[tuple[str, str, str, str]]:
    """Run every scenario (baseline and static stability); return the table's rows."""
    scale = 0.5 if quick else 1.0
    rows: list[tuple[str, str, str, str]] = []
    # The library's warnings (one per failed refresh) would drown the table.
    quiet = logging.NullHandler()
    library = logging.getLogger("n3xt_creds")
    library.addHandler(quiet)
    library.propagate = False
    with Emulator() as emulator:
        a = {s: wrong_secret(emulator, stable=s, seconds=30 * scale) for s in (False, True)}
        for stable in (False, True):
            r = a[stable]
            rows.append(
                (
                    f"(a) wrong secret, 50 callers, {30 * scale:g} s",
                    "static stability" if stable else "before (baseline)",
                    f"{r['token_requests']} token requests, {r['calls']} calls",
                    f"after the first failure: p99 {r['p99_ms']:.2f} ms, max {r['max_ms']:.1f} ms, "
                    f"{r['over_5ms']} calls > 5 ms",
                )
            )
        for stable in (False, True):
            r = outage(emulator, stable=stable, outage_s=60 * scale, after_s=35)
            first = r["first_success_s"]
            rows.append(
                (
                    f"(b) 503 for {60 * scale:g} s then healthy, 50 callers",
                    "static stability" if stable else "before (baseline)",
                    f"{r['outage_requests']} token requests during the outage",
                    f"first success {first:.1f} s after recovery; "
                    f"{r['blocked_over_deadline']} callers blocked > deadline + 1 s "
                    f"(longest {r['longest_wait_s']:.1f} s)"
                    if first is not None
                    else "no success",
                )
            )
        for stable in (False, True):
            r = api_401(emulator, stable=stable, seconds=30 * scale)
            rows.append(
                (
                    f"(c) API always 401, 10 callers, {30 * scale:g} s",
                    "static stability" if stable else "before (baseline)",
                    f"{r['token_requests']} token requests",
                    f"{r['api_calls']} API calls, {r['passed_through']} 401s passed through",
                )
            )
        size = 300 if quick else 1000
        for stable in (False, True):
            r = fleet(emulator, stable=stable, size=size, latency=0.2)
            rows.append(
                (
                    f"(d) {size} authenticators going stale (200 ms answers, "
                    f"{FLEET_STEP:g} s steps)",
                    "static stability" if stable else "before (no jitter)",
                    f"max {r['max_in_flight']} token requests in flight "
                    f"({100 * r['max_in_flight'] / size:.1f}% of the fleet)",
                    f"{r['refreshes']} refreshes",
                )
            )
        t = trickle(emulator)
        for mode in ("sync", "async"):
            seconds, error, in_flight = t[mode]
            rows.append(
                (
                    f"(e) trickled answer, 1 byte / 0.2 s, {mode}",
                    "static stability (before: 20 s, issue 10)",
                    f"ended in {seconds:.2f} s (deadline 2 s) with {error or 'no error'}",
                    f"max {in_flight} token request(s) in flight",
                )
            )
        r = late_token(emulator)
        rows.append(
            (
                "(f) expires_in 1 s < round trip 1.2 s",
                "static stability (before: never returned)",
                f"returned in {r['seconds']:.2f} s",
                f"{r['token_requests']} token request(s)",
            )
        )
    library.removeHandler(quiet)
    library.propagate = True
    return rows


HEADER = ("scenario", "behaviour", "N3XT sees", "callers see")


def main() -> None:
    """Print the storm table (python benchmarks/storm.py [--quick])."""
    import sys

    from run import _table  # the one table format of run.py

    rows = run(quick="--quick" in sys.argv)
    print(_table(f"9. Storms (issue 10; injected clock x{SPEED:g})", HEADER, rows))


if __name__ == "__main__":
    main()
