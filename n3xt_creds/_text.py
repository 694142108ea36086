"""Text from outside, made safe to put in a log line or an exception message.

Anything the library did not write itself — a ``client_id`` read from a source, an
error string or content type a server sent, a Vault error, an exception message
from a third-party library — may hold control characters. Written as-is, a CR/LF
forges a log line, an ESC sequence rewrites the operator's terminal, a bidi override
reorders what is displayed. :func:`escape_controls` is the one helper every layer
uses (core and sources alike) before such text goes into a log record or a message.
"""

from __future__ import annotations

__all__ = ["escape_controls"]

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_ELLIPSIS = "..."


def escape_controls(text: object, limit: int | None = None) -> str:
    """``text`` with every non-printable character shown as an escape, cut to ``limit``.

    Printable characters (any script) stay as they are; control characters (C0, DEL,
    C1), line and paragraph separators, and invisible format characters such as bidi
    overrides become ``\\n``, ``\\r``, ``\\t``, ``\\xNN``, ``\\uNNNN`` or
    ``\\UNNNNNNNN``, so the result is always one printable line. With ``limit``, at
    most ``limit`` characters of ``text`` are kept and ``...`` marks the cut. Non-str
    values are converted with ``str()`` first.
    """
    value = text if isinstance(text, str) else str(text)
    cut = limit is not None and len(value) > limit
    if cut:
        assert limit is not None
        value = value[: max(limit, 0)]
    if not value.isprintable():
        value = "".join(c if c.isprintable() else _escape(c) for c in value)
    return value + _ELLIPSIS if cut else value


def _escape(char: str) -> str:
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"
