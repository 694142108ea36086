"""Diagnosing a shared cache for ``n3xt-creds check``: reachable, lease works, entry usable.

Never prints or returns a token: only its fingerprint, age and time left.
"""

from __future__ import annotations

import secrets
import time
from typing import NamedTuple

from ...credentials import Credentials
from .base import EntryProblem, TokenCache, entry_key, open_entry

__all__ = ["ProbeReport", "probe"]


class ProbeReport(NamedTuple):
    """What :func:`probe` found. ``entry`` is ``"absent"``, ``"present"`` or the condition
    of an unusable one (``"entry_garbage"``, ``"entry_foreign"``, ``"entry_expired"``);
    ``lease`` is ``"works"`` or ``"held by another process"``."""

    where: str
    seconds: float
    lease: str
    entry: str
    age: float | None = None
    expires_in: float | None = None
    token_fingerprint: str | None = None


def probe(
    cache: TokenCache, *, token_url: str, credentials: Credentials, refresh_margin: float
) -> ProbeReport:
    """Two store calls at most: read the entry, then take and release the lease.

    Raises :class:`~n3xt_creds._core.shared.base.StoreError` when the store fails.
    """
    key = entry_key(token_url, credentials)
    owner = f"n3xt-creds-check-{secrets.token_hex(8)}"
    started = time.perf_counter()
    found = cache.lookup(key.name, owner=owner, lease_seconds=5.0, unless=None)
    leased = found.leased
    if found.entry is not None and not leased:
        leased = cache.lookup(key.name, owner=owner, lease_seconds=5.0, unless=found.entry).leased
    if leased:
        cache.release(key.name, owner)
    seconds = time.perf_counter() - started
    lease = "works" if leased else "held by another process (a refresh in progress)"
    if found.entry is None:
        return ProbeReport(cache.describe(), seconds, lease, "absent")
    try:
        sealed = open_entry(
            key,
            found.entry,
            now=time.monotonic(),
            wall_now=time.time(),
            refresh_margin=refresh_margin,
        )
    except EntryProblem as problem:
        return ProbeReport(cache.describe(), seconds, lease, problem.condition)
    token = sealed.token
    now = time.monotonic()
    return ProbeReport(
        cache.describe(),
        seconds,
        lease,
        "present",
        age=round(token.age(now), 1),
        expires_in=round(token.expires_at - now, 1),
        token_fingerprint=token.access_token.fingerprint,
    )
