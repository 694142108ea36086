"""ManualClock: a monotonic clock a test moves by hand."""

from __future__ import annotations

__all__ = ["ManualClock"]


class ManualClock:
    """A stand-in for :func:`time.monotonic` that moves only when told to.

    Inject it where n3xt_creds takes a ``clock`` (``Authenticator(clock=...)``,
    ``Emulator(clock=...)``) to walk a token through its fresh, stale and expired
    phases without sleeping::

        clock = ManualClock()
        auth = Authenticator(source, token_url=url, clock=clock)
        auth.get_token()
        clock.advance(3400)   # now in the stale window: a background refresh starts
    """

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``."""
        self.now += seconds

    def __repr__(self) -> str:
        return f"ManualClock(now={self.now})"
