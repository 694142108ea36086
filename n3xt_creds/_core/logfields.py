"""Structured fields on every record of the ``n3xt_creds`` logger.

Each record carries the same five fields as ``extra`` — ``event`` (what happened, a
stable snake_case name), ``trigger`` (why the refresh ran: the ``n3xt_creds.token.refreshes``
trigger), ``duration`` (seconds), ``request_id`` (N3XT's, to quote to its support) and
``result`` — so JSON logging and structlog users get them as fields without parsing the
text, which stays as it is. A field that does not apply is ``None``; the five are always
there, so a format string may name them. None of them ever holds a secret, a token or
a client_id.
"""

from __future__ import annotations

__all__ = ["FIELDS", "fields"]

#: The names every record carries (``LogRecord`` attributes).
FIELDS = ("event", "trigger", "duration", "request_id", "result")


def fields(
    event: str,
    *,
    trigger: str | None = None,
    duration: float | None = None,
    request_id: str | None = None,
    result: str | None = None,
) -> dict[str, object]:
    """The ``extra`` mapping of one log call."""
    return {
        "event": event,
        "trigger": trigger,
        "duration": duration,
        "request_id": request_id,
        "result": result,
    }
