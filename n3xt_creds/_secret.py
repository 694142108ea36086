"""Secret: a string that never shows its value by accident."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, NoReturn

__all__ = ["Secret"]

_MASK = "**********"


class Secret:
    """A secret string whose ``str``, ``repr`` and formatting never reveal it.

    Wrap client secrets and tokens in it as soon as they are read, and call
    :meth:`get_secret_value` only at the one place the raw value is needed (the
    token request body). ``str(secret)``, ``repr(secret)``, f-strings, ``%``-formatting
    and logging all show ``**********``; :attr:`fingerprint` (the first 8 hex digits
    of the value's SHA-256) lets an operator tell two secrets apart without seeing them.

    Equality compares in constant time (:func:`hmac.compare_digest`). Pickling is
    refused with :class:`TypeError` — a secret written to disk or sent to another
    process by ``pickle`` is a leak, and an unpickled ``Secret`` that silently lost
    its value would be a bug. ``copy.copy``/``copy.deepcopy`` return the same object:
    it is immutable and the value never leaves memory.
    """

    __slots__ = ("__value",)

    def __init__(self, value: str) -> None:
        if isinstance(value, Secret):
            value = value.get_secret_value()
        if not isinstance(value, str):
            raise TypeError(f"Secret wraps a str, not {type(value).__name__}")
        self.__value = value

    def get_secret_value(self) -> str:
        """Return the raw value. Call it only where the value must be sent."""
        return self.__value

    @property
    def fingerprint(self) -> str:
        """First 8 hex digits of SHA-256 of the value: safe to log, tells secrets apart."""
        return hashlib.sha256(self.__value.encode("utf-8")).hexdigest()[:8]

    def __bool__(self) -> bool:
        return bool(self.__value)

    def __len__(self) -> int:
        return len(self.__value)

    def __str__(self) -> str:
        return _MASK

    def __repr__(self) -> str:
        return f"Secret('{_MASK}', fingerprint={self.fingerprint})"

    def __format__(self, format_spec: str) -> str:
        return format(_MASK, format_spec)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(
            self.__value.encode("utf-8"), other.get_secret_value().encode("utf-8")
        )

    def __hash__(self) -> int:
        return hash(("n3xt_creds.Secret", self.fingerprint))

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError(
            "n3xt_creds.Secret refuses to be pickled: pickling would write the secret "
            "to wherever the pickle goes. Pass the source, not the secret, to other processes."
        )

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self
