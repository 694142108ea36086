"""How long the first async refresh of a process blocks the event loop (run.py, section 6).

Run in a fresh interpreter (``python benchmarks/first_async_refresh.py``): it starts the
emulator, then, on one event loop, gets a token twice (the second after
``invalidate()``) while a ticker task measures the longest the loop was blocked
during each. The first refresh pays every first-use cost of the process (imports,
TLS context, client construction); the second is the warm baseline from the same
run. Prints one JSON object: ``{"first_ms": ..., "warm_ms": ...}``.
"""

from __future__ import annotations

import asyncio
import json
import time

from n3xt_creds import Authenticator
from n3xt_creds.testing import Emulator

_TICK = 0.0005


async def _blocked_during(refresh: object) -> float:
    """Longest delay (ms) of a ticker while ``refresh`` (an awaitable factory) runs."""
    worst = 0.0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal worst
        while not stop.is_set():
            start = time.perf_counter()
            await asyncio.sleep(_TICK)
            worst = max(worst, time.perf_counter() - start - _TICK)

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)  # the ticker is running before the refresh starts
    worst = 0.0
    await refresh()  # type: ignore[operator]
    stop.set()
    await tick
    return worst * 1000


def main() -> None:
    with Emulator(latency=0.02) as emulator:
        creds = emulator.add_client()
        source_creds = creds

        class Source:
            def get_credentials(self):  # type: ignore[no-untyped-def]
                return source_creds

        auth = Authenticator(Source(), token_url=emulator.token_url())

        async def run() -> dict[str, float]:
            first = await _blocked_during(auth.aget_token)
            auth.invalidate()
            warm = await _blocked_during(auth.aget_token)
            await auth.aclose()
            return {"first_ms": first, "warm_ms": warm}

        print(json.dumps(asyncio.run(run())))


if __name__ == "__main__":
    main()
