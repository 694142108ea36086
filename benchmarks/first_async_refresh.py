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

from _common import StaticSource, longest_loop_block

from n3xt_creds import Authenticator
from n3xt_creds.testing import Emulator

_TICK = 0.0005


def main() -> None:
    with Emulator(latency=0.02) as emulator:
        auth = Authenticator(StaticSource(emulator.add_client()), token_url=emulator.token_url())

        async def run() -> dict[str, float]:
            first = await longest_loop_block(auth.aget_token, tick=_TICK)
            auth.invalidate()
            warm = await longest_loop_block(auth.aget_token, tick=_TICK)
            await auth.aclose()
            return {"first_ms": first, "warm_ms": warm}

        print(json.dumps(asyncio.run(run())))


if __name__ == "__main__":
    main()
