"""Fault: the ways the emulated token endpoint can misbehave on purpose."""

from __future__ import annotations

import enum

__all__ = ["Fault"]


class Fault(str, enum.Enum):
    """A failure the emulator answers the next token request with.

    Queue them with :meth:`Emulator.inject_fault`; each queued fault is consumed by
    exactly one token request, in FIFO order. The value doubles as the outcome name
    in :attr:`Counters.token_requests`.
    """

    SERVER_ERROR = "server_error"
    """500 with an N3XT-style JSON error body."""

    BAD_GATEWAY_HTML = "bad_gateway_html"
    """502 with an HTML page, as a load balancer in front of N3XT would answer."""

    UNAVAILABLE = "unavailable"
    """503 with a JSON error body."""

    RATE_LIMITED = "rate_limited"
    """429 with a ``Retry-After`` header (seconds, set by ``inject_fault(retry_after=)``)."""

    HANG = "hang"
    """No answer at all until the client gives up (bounded by the emulator's ``hang_timeout``)."""

    RESET = "reset"
    """The connection is closed abruptly (TCP RST) without an answer."""

    GARBAGE_200 = "garbage_200"
    """200 with ``Content-Type: application/json`` and a body that is not JSON."""

    STATUS_500_IN_BODY = "status_500_in_body"
    """200 whose JSON body says ``"status_code": 500`` (N3XT reports some failures this way)."""
