"""Help with a missing key without showing a secret: the one key-name hint of the Vault
and AWS sources.

A secret is a mapping of key names to values. When the key we need is missing,
naming the keys that are there fixes most typos — but a secret whose *key names*
hold secrets (``{"9f8e7d6c5b4a...": ""}``, a value pasted into the key field) exists,
so names are shown only when every one of them looks like a name a person typed: an
identifier of at most 40 characters with at most 4 digits. Otherwise only the
number of keys is said.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping

__all__ = ["key_hint"]

_KEY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,39}")
_MAX_DIGITS = 4
_MAX_KEYS_SHOWN = 10


def key_hint(key: str, data: Mapping[object, object]) -> str:
    """``" — did you mean 'client_id'?"``, ``" (keys present: 'a', 'b')"``, or only a
    count when a key name does not look like one (it could be the secret)."""
    names = [k for k in data if isinstance(k, str) and _looks_like_a_name(k)]
    if len(names) != len(data):
        return f" (it has {len(data)} key(s); their names are not shown)"
    match = difflib.get_close_matches(key, names, n=1, cutoff=0.8)
    if match:
        return f" — did you mean {match[0]!r}?"
    shown = ", ".join(repr(n) for n in sorted(names)[:_MAX_KEYS_SHOWN])
    more = ", ..." if len(names) > _MAX_KEYS_SHOWN else ""
    return f" (keys present: {shown or 'none'}{more})"


def _looks_like_a_name(key: str) -> bool:
    return bool(_KEY_NAME.fullmatch(key)) and sum(c.isdigit() for c in key) <= _MAX_DIGITS
