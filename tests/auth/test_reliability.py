"""Many callers, many refreshes, real faults, revocation and rotation: no call fails.

In the fault run tokens live 1 s, so ~2,000 API calls go through many refreshes while
the driving thread keeps the emulator's fault queue fed so about 30% of token requests
fail. Revocation and rotation happen at chosen points of a run, so the outcome is exact.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable

import httpx
import pytest

from n3xt_creds import Authenticator, Credentials
from n3xt_creds.testing import Emulator, Fault
from tests.auth._support import SwitchableSource
from tests.auth.conftest import MakeAuth

CALLERS = 50
CALLS = 2000


def hammer(
    auth: Authenticator,
    url: str,
    *,
    callers: int = CALLERS,
    calls: int = CALLS,
    between: Callable[[int], None] | None = None,
) -> list[int]:
    """``callers`` threads share ``calls`` GETs through one httpx.Client; return the statuses.

    ``between(done)`` runs in the driving thread while the calls go on, with the
    number of calls finished so far, until all are done.
    """
    statuses: list[int] = []
    errors: list[str] = []
    lock = threading.Lock()
    remaining = iter(range(calls))
    finished = threading.Event()

    def worker(client: httpx.Client) -> None:
        while True:
            with lock:
                if next(remaining, None) is None:
                    return
            try:
                status = client.get(url).status_code
            except Exception as exc:  # a failed call must be counted, not lost, and shown
                status = -1
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}")
            with lock:
                statuses.append(status)
                if len(statuses) == calls:
                    finished.set()

    # As many keep-alive slots as callers: with fewer, httpcore's pool closes "surplus"
    # idle connections, and can close one it has just assigned to a waiting thread, whose
    # call then fails with EBADF (encode/httpcore#1110) — a pool bug, not ours.
    limits = httpx.Limits(max_connections=callers, max_keepalive_connections=callers)
    with httpx.Client(auth=auth, timeout=10, limits=limits) as client:
        threads = [threading.Thread(target=worker, args=(client,)) for _ in range(callers)]
        for thread in threads:
            thread.start()
        try:
            while not finished.wait(0.01):
                if between is not None:
                    between(len(statuses))
        finally:
            for thread in threads:
                thread.join(30)
    if errors:  # name what failed, not just that a status was -1
        raise AssertionError(f"{len(errors)} call(s) raised; first: {errors[0]}")
    return statuses


@pytest.mark.slow
def test_2000_calls_with_30_percent_of_token_requests_faulted_all_succeed(
    n3xt_emulator: Emulator, make_auth: MakeAuth
) -> None:
    n3xt_emulator.expires_in = 1
    auth = make_auth(timeout=0.3)
    rng = random.Random(1234)
    faults = list(Fault)

    def chaos(_: int) -> None:
        counters = n3xt_emulator.counters
        faulted = counters.token_requests_total - counters.token_requests.get("success", 0)
        if not n3xt_emulator.pending_faults and faulted < 0.3 * (counters.token_requests_total + 1):
            n3xt_emulator.inject_fault(rng.choice(faults), retry_after=0)

    statuses = hammer(auth, n3xt_emulator.api_url(), between=chaos)

    assert statuses == [200] * CALLS
    counters = n3xt_emulator.counters
    successes = counters.token_requests["success"]
    faulted = counters.token_requests_total - successes
    assert successes >= 3, "the run should span several token lifetimes"
    assert faulted >= 0.2 * counters.token_requests_total, counters.token_requests
    assert counters.max_in_flight == 1  # never two token requests at once
    # Bounded: about one successful refresh per half token lifetime, not per call.
    assert successes <= auth.stats.refreshes
    assert counters.token_requests_total < 200


def test_revocation_mid_run_fails_no_call(n3xt_emulator: Emulator, auth: Authenticator) -> None:
    revoked_at: list[int] = []

    def revoke_now_and_then(done: int) -> None:
        # Three revocations, each after the previous one has been recovered from.
        due = len(revoked_at) < 3 and done >= 200 * (len(revoked_at) + 1)
        recovered = auth.stats.refreshes > len(revoked_at)
        if due and recovered:
            n3xt_emulator.revoke_tokens()
            revoked_at.append(done)

    statuses = hammer(auth, n3xt_emulator.api_url(), calls=1000, between=revoke_now_and_then)

    assert statuses == [200] * 1000
    assert len(revoked_at) == 3
    assert auth.stats.refreshes == 4  # one per revocation: the 401s shared each refresh
    assert n3xt_emulator.counters.api_calls["revoked_token"] >= 3
    assert n3xt_emulator.counters.api_calls["revoked_token"] == auth.stats.replays


def test_rotation_mid_run_fails_no_call(
    n3xt_emulator: Emulator, make_auth: MakeAuth, source: SwitchableSource, creds: Credentials
) -> None:
    auth = make_auth()
    successes_at_rotation: list[int] = []

    def rotate_once(done: int) -> None:
        if not successes_at_rotation and done >= 300:
            # The operator's rotation: new secret (the old one is refused from now on),
            # the store serves it, and the tokens issued to the old secret are revoked.
            new = n3xt_emulator.rotate_client(creds.client_id)
            source.serve(new)
            successes_at_rotation.append(n3xt_emulator.counters.token_requests["success"])
            n3xt_emulator.revoke_tokens(creds.client_id)

    statuses = hammer(auth, n3xt_emulator.api_url(), calls=1500, between=rotate_once)

    assert statuses == [200] * 1500
    # A token was obtained after the rotation, so with the new secret; one refresh
    # served every caller that met the revoked token.
    assert n3xt_emulator.counters.token_requests == {"success": 2}
    assert successes_at_rotation == [1]
    assert n3xt_emulator.counters.api_calls["revoked_token"] == auth.stats.replays
