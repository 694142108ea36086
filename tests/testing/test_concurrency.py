"""The emulator takes 200 simultaneous connections without refusing one."""

from __future__ import annotations

import asyncio

import httpx

from n3xt_creds.testing import Emulator
from tests._poll import await_until

from .conftest import grant_body

CONNECTIONS = 200


async def test_200_concurrent_token_requests_all_succeed(n3xt_emulator: Emulator) -> None:
    creds = n3xt_emulator.add_client()
    # Hold every answer so all 200 requests are provably in flight at the same moment.
    n3xt_emulator.pause()
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits, timeout=20.0) as client:
        tasks = [
            asyncio.create_task(client.post(n3xt_emulator.token_url(), json=grant_body(creds)))
            for _ in range(CONNECTIONS)
        ]
        try:
            await await_until(
                lambda: n3xt_emulator.counters.in_flight >= CONNECTIONS,
                timeout=15,
                what=f"{CONNECTIONS} requests in flight at the emulator",
            )
        finally:
            n3xt_emulator.resume()
        responses = await asyncio.gather(*tasks)

    assert [r.status_code for r in responses] == [200] * CONNECTIONS
    assert len({r.json()["access_token"] for r in responses}) == CONNECTIONS
    counters = n3xt_emulator.counters
    assert counters.token_requests == {"success": CONNECTIONS}
    assert counters.max_in_flight == CONNECTIONS
    print(f"max token requests in flight: {counters.max_in_flight}")
