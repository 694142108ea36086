"""Read one field out of a Secrets Manager secret's value without ever echoing the value.

Secrets Manager hands back whatever was stored: a JSON object (what the console's
"key/value" editor writes), any other string, or bytes (``SecretBinary``). Each way
a value can be wrong gets its own message naming the secret and the problem — never
the value, a fragment of it, or an exception that carries it (``json.JSONDecodeError``
keeps the whole document in ``.doc``, hence the ``from None``).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from typing import Any

from ...errors import SourceError

__all__ = ["read_string_field"]

# Key names are shown to help fix a typo, but only when they look like key names:
# a JSON object whose *keys* hold secrets is odd, and then we show nothing.
_PRINTABLE_KEY = re.compile(r"[A-Za-z0-9_.:/-]{1,64}")
_MAX_KEYS_SHOWN = 10

_JSON_TYPE_NAMES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


def read_string_field(response: Mapping[str, Any], *, key: str, where: str) -> str:
    """Return ``key`` of the JSON object in ``response["SecretString"]``, stripped.

    ``response`` is a GetSecretValue answer; ``where`` names the secret for messages
    (``"aws: secret 'n3xt/api' (stage AWSCURRENT)"``). Raises
    :class:`~n3xt_creds.SourceError` naming the problem for a binary secret, a value
    that is not a JSON object, a missing key, or a key that is not a non-empty string.
    """
    document = _secret_string(response, where=where)
    try:
        parsed = json.loads(document)
    except json.JSONDecodeError as exc:
        # Only the position is shown: exc.msg is fixed text, exc.doc is the secret.
        raise SourceError(
            f"{where}: SecretString is not valid JSON ({exc.msg} at line {exc.lineno} "
            f"column {exc.colno}); store a JSON object such as "
            f'{{"{key}": "..."}} (the value is not shown)',
            source="aws",
        ) from None
    if not isinstance(parsed, dict):
        raise SourceError(
            f"{where}: SecretString is JSON {_json_type(parsed)}, expected an object with "
            f"the key {key!r} (the value is not shown)",
            source="aws",
        )
    if key not in parsed:
        raise SourceError(
            f"{where}: the JSON object has no key {key!r}{_key_hint(key, parsed)}; add it "
            "to the secret or set the source's key name to the one the secret uses",
            source="aws",
        )
    value = parsed[key]
    if not isinstance(value, str):
        raise SourceError(
            f"{where}: key {key!r} is {_json_type(value)}, expected a string "
            "(the value is not shown)",
            source="aws",
        )
    if not value.strip():
        raise SourceError(f"{where}: key {key!r} is an empty string", source="aws")
    return value.strip()


def _secret_string(response: Mapping[str, Any], *, where: str) -> str:
    document = response.get("SecretString")
    if document is None:
        if response.get("SecretBinary") is not None:
            raise SourceError(
                f"{where}: the secret holds SecretBinary, not a SecretString; store the "
                "credentials as a JSON string (`aws secretsmanager put-secret-value "
                "--secret-string ...`), not with --secret-binary",
                source="aws",
            )
        raise SourceError(f"{where}: the answer has no SecretString", source="aws")
    if not isinstance(document, str):
        raise SourceError(
            f"{where}: SecretString is {type(document).__name__}, expected text", source="aws"
        )
    return document


def _json_type(value: object) -> str:
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def _key_hint(key: str, parsed: dict[Any, Any]) -> str:
    names = [k for k in parsed if isinstance(k, str) and _PRINTABLE_KEY.fullmatch(k)]
    if len(names) != len(parsed):
        return f" (it has {len(parsed)} key(s))"
    match = difflib.get_close_matches(key, names, n=1, cutoff=0.8)
    if match:
        return f" — did you mean {match[0]!r}?"
    shown = ", ".join(repr(n) for n in sorted(names)[:_MAX_KEYS_SHOWN])
    more = ", ..." if len(names) > _MAX_KEYS_SHOWN else ""
    return f" (keys present: {shown or 'none'}{more})"
