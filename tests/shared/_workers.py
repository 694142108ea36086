"""Worker processes for the fleet tests (spawned: real, separate interpreters).

Each builds its own Authenticator with a shared cache, waits for the start signal so
that all start together, gets a token and reports it with how long it took.
"""

from __future__ import annotations

import time
from typing import Any


def fleet_worker(
    token_url: str,
    client_id: str,
    client_secret: str,
    backend: str,
    location: str,
    start: Any,
    results: Any,
    timeout: float = 5.0,
) -> None:
    from n3xt_creds import Authenticator, Credentials, FileTokenCache, RedisTokenCache, Secret

    class Fixed:
        def get_credentials(self) -> Credentials:
            return Credentials(client_id, Secret(client_secret))

    cache: object = None
    if backend == "file":
        cache = FileTokenCache(location)
    elif backend == "redis":
        cache = RedisTokenCache(location)
    auth = Authenticator(Fixed(), token_url=token_url, shared_cache=cache, timeout=timeout)
    start.wait(30)
    began = time.monotonic()
    try:
        token = auth.get_token()
        results.put(("ok", token, time.monotonic() - began))
    except Exception as error:  # reported, and the test fails on it
        results.put(("error", type(error).__name__, time.monotonic() - began))
    finally:
        auth.close()
