"""Read one field out of a Secrets Manager secret's value without ever echoing the value.

Secrets Manager hands back whatever was stored: a JSON object (what the console's
"key/value" editor writes), any other string, or bytes (``SecretBinary``). Each way
a value can be wrong gets its own message naming the secret and the problem — never
the value, a fragment of it, or an exception that carries it (``json.JSONDecodeError``
keeps the whole document in ``.doc``). The error is *returned*, never raised here:
the frames that hold the document return before anyone raises, so the secret is not
in the frame locals of the traceback either.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..._secret import Secret
from ...errors import SourceError
from .._keys import key_hint

__all__ = ["read_string_field"]

_JSON_TYPE_NAMES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


def read_string_field(response: Mapping[str, Any], *, key: str, where: str) -> Secret | SourceError:
    """``key`` of the JSON object in ``response["SecretString"]``, stripped, as a Secret.

    ``response`` is a GetSecretValue answer; ``where`` names the secret for messages
    (``"aws: secret 'n3xt/api' (stage AWSCURRENT)"``). Returns the
    :class:`~n3xt_creds.SourceError` naming the problem for a binary secret, a value
    that is not a JSON object, a missing key, or a key that is not a non-empty string.
    """
    parsed = _parse(response, key=key, where=where)
    if isinstance(parsed, SourceError):
        return parsed
    if key not in parsed:
        return SourceError(
            f"{where}: the JSON object has no key {key!r}{key_hint(key, parsed)}; add it "
            "to the secret or set the source's key name to the one the secret uses",
            source="aws",
        )
    value = parsed[key]
    if not isinstance(value, str):
        return SourceError(
            f"{where}: key {key!r} is {_json_type(value)}, expected a string "
            "(the value is not shown)",
            source="aws",
        )
    if not value.strip():
        return SourceError(f"{where}: key {key!r} is an empty string", source="aws")
    return Secret(value.strip())


def _parse(response: Mapping[str, Any], *, key: str, where: str) -> dict[Any, Any] | SourceError:
    document = response.get("SecretString")
    if document is None:
        if response.get("SecretBinary") is not None:
            return SourceError(
                f"{where}: the secret holds SecretBinary, not a SecretString; store the "
                "credentials as a JSON string (`aws secretsmanager put-secret-value "
                "--secret-string ...`), not with --secret-binary",
                source="aws",
            )
        return SourceError(f"{where}: the answer has no SecretString", source="aws")
    if not isinstance(document, str):
        return SourceError(
            f"{where}: SecretString is {type(document).__name__}, expected text", source="aws"
        )
    problem = ""
    try:
        parsed = json.loads(document)
    except json.JSONDecodeError as exc:
        # Only the position is shown: exc.msg is fixed text, exc.doc is the secret.
        problem = f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    except RecursionError:
        problem = "nested too deeply"
    if problem:
        return SourceError(
            f"{where}: SecretString is not valid JSON ({problem}); store a JSON object such "
            f'as {{"{key}": "..."}} (the value is not shown)',
            source="aws",
        )
    if not isinstance(parsed, dict):
        return SourceError(
            f"{where}: SecretString is JSON {_json_type(parsed)}, expected an object with "
            f"the key {key!r} (the value is not shown)",
            source="aws",
        )
    return parsed


def _json_type(value: object) -> str:
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)
