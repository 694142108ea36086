"""One token-endpoint connection pool per process, shared by every Authenticator.

Descriptors are counted in a separate interpreter (pytest's own process also runs
the emulator's server side of each connection).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from n3xt_creds import Authenticator, Credentials, N3XTCredsError, TokenRequestError
from n3xt_creds._core import transport
from n3xt_creds._core.retry import RetryPolicy
from n3xt_creds._core.transport import POOL_KEEPALIVE, POOL_MAX_CONNECTIONS, _acquire
from n3xt_creds.testing import Emulator
from tests.authenticator._support import SwitchableSource, secret_of

MANY_SCRIPT = r"""
import json, os, sys
from n3xt_creds import Authenticator, Credentials, N3XTCredsError

class Source:
    def get_credentials(self):
        return Credentials(os.environ["T_CLIENT_ID"], os.environ["T_CLIENT_SECRET"])

def fds():
    return len(os.listdir("/proc/self/fd"))

count = int(sys.argv[2])
base = fds()
auths = [Authenticator(Source(), token_url=sys.argv[1], timeout=5) for _ in range(count)]
for auth in auths:
    auth.get_token()
held = fds() - base
for auth in auths[: count // 2]:
    auth.close()
# Closing some tenants leaves the others working on the shared pool.
auths[-1].invalidate()
auths[-1].get_token()
for auth in auths[count // 2 :]:
    auth.close()
print(json.dumps({"held": held, "after_close": fds() - base}))
"""


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts /proc/self/fd")
def test_many_authenticators_share_a_few_descriptors(
    n3xt_emulator: Emulator, creds: Credentials, tmp_path: Path
) -> None:
    script = tmp_path / "many.py"
    script.write_text(MANY_SCRIPT)
    env = {**os.environ, "T_CLIENT_ID": creds.client_id, "T_CLIENT_SECRET": secret_of(creds)}
    done = subprocess.run(
        [sys.executable, str(script), n3xt_emulator.token_url(), "300"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    verdict = json.loads(done.stdout.strip().splitlines()[-1])
    assert 1 <= verdict["held"] <= POOL_KEEPALIVE  # 300 tenants, not 300 descriptors
    assert verdict["after_close"] == 0  # the last close() closes the pool


def test_an_injected_client_still_wins(n3xt_emulator: Emulator, source: SwitchableSource) -> None:
    sent: list[str] = []
    with httpx.Client(event_hooks={"request": [lambda r: sent.append(str(r.url))]}) as client:
        auth = Authenticator(source, token_url=n3xt_emulator.token_url(), http_client=client)
        auth.get_token()
        auth.close()
        assert sent == [n3xt_emulator.token_url()]
        assert not client.is_closed  # never closed by us


def test_a_closed_authenticator_does_not_close_the_pool_under_others(
    n3xt_emulator: Emulator, source: SwitchableSource
) -> None:
    first = Authenticator(source, token_url=n3xt_emulator.token_url())
    second = Authenticator(source, token_url=n3xt_emulator.token_url())
    first.get_token()
    second.get_token()
    first.close()
    second.invalidate()
    assert second.get_token()
    second.close()
    first.invalidate()
    with pytest.raises((RuntimeError, N3XTCredsError)):  # closed stays closed
        first.get_token()


ASYNC_SCRIPT = r"""
import asyncio, json, os, sys, warnings
warnings.simplefilter("error", ResourceWarning)
from n3xt_creds import Authenticator, Credentials

class Source:
    def get_credentials(self):
        return Credentials(os.environ["T_CLIENT_ID"], os.environ["T_CLIENT_SECRET"])

def fds():
    return len(os.listdir("/proc/self/fd"))

count = int(sys.argv[2])
auths = [Authenticator(Source(), token_url=sys.argv[1], timeout=10) for _ in range(count)]

async def tenants():
    before = fds()  # the loop's own descriptors (selector, self-pipe) are not ours
    await asyncio.gather(*(auth.aget_token() for auth in auths))
    return fds() - before

base = fds()
held = asyncio.run(tenants())
after_first_loop = fds() - base
for auth in auths:
    auth.invalidate()
again = asyncio.run(tenants())  # a second loop gets its own pool
for auth in auths:
    auth.close()
print(json.dumps({"held": held, "after_loop": after_first_loop, "again": again,
                  "after_all": fds() - base}))
"""


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts /proc/self/fd")
def test_async_tenants_share_one_pool_per_event_loop(
    n3xt_emulator: Emulator, creds: Credentials, tmp_path: Path
) -> None:
    script = tmp_path / "many_async.py"
    script.write_text(ASYNC_SCRIPT)
    env = {**os.environ, "T_CLIENT_ID": creds.client_id, "T_CLIENT_SECRET": secret_of(creds)}
    n3xt_emulator.latency = 0.05  # long enough for 150 concurrent refreshes to overlap
    done = subprocess.run(
        [sys.executable, "-X", "dev", str(script), n3xt_emulator.token_url(), "150"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "unclosed" not in done.stderr  # the loop's pool is closed when the loop ends
    verdict = json.loads(done.stdout.strip().splitlines()[-1])
    # All at once: up to POOL_MAX_CONNECTIONS in flight, then only POOL_KEEPALIVE kept.
    assert 1 <= verdict["held"] <= POOL_KEEPALIVE
    assert 1 <= verdict["again"] <= POOL_KEEPALIVE
    assert verdict["after_loop"] == 0
    assert verdict["after_all"] == 0
    assert n3xt_emulator.counters.max_in_flight <= POOL_MAX_CONNECTIONS


async def test_waiting_for_a_slot_is_bounded_and_never_leaks_one() -> None:
    slots = asyncio.Semaphore(1)
    await slots.acquire()
    assert await _acquire(slots, 0.01) is False  # timed out
    waiter = asyncio.ensure_future(_acquire(slots, 10))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    slots.release()
    assert not slots.locked()  # neither the timeout nor the cancellation kept a permit
    assert await _acquire(slots, 0.01) is True


def test_a_full_pool_is_a_retryable_pool_timeout(
    n3xt_emulator: Emulator, source: SwitchableSource
) -> None:
    # Every slot taken: what a burst of concurrent refreshes looks like to the next one.
    slots = transport._POOL.slots
    for _ in range(POOL_MAX_CONNECTIONS):
        assert slots.acquire(timeout=5)
    try:
        auth = Authenticator(
            source,
            token_url=n3xt_emulator.token_url(),
            timeout=0.05,
            retry=RetryPolicy(max_attempts=2, base_delay=0.001, max_delay=0.001),
        )
        with pytest.raises(TokenRequestError, match="free connection in the pool") as info:
            auth.get_token()
        assert info.value.retryable
        assert n3xt_emulator.counters.token_requests == {}  # nothing was sent
    finally:
        for _ in range(POOL_MAX_CONNECTIONS):
            slots.release()
    auth.close()
