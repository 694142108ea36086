"""Credentials: the client_id / client_secret pair a source hands to the authenticator."""

from __future__ import annotations

from typing import Any

from ._secret import Secret

__all__ = ["Credentials"]


class Credentials:
    """An N3XT client_id and its client_secret, as read from one source.

    ``client_secret`` is a :class:`~n3xt_creds.Secret`, so printing or logging a
    ``Credentials`` never shows it. ``source`` is a human description of where the
    pair came from (``"env:N3XT_CLIENT_ID"``, ``"vault:secret/n3xt/api"``), for logs
    and ``n3xt-creds check``; it takes no part in equality. A plain ``str`` secret is
    wrapped on construction. Immutable; pickling is refused (the secret refuses it).
    """

    # A plain immutable class, not a frozen dataclass: creating a dataclass costs ~1 ms
    # at import time, and `import n3xt_creds` must stay cheap.
    __slots__ = ("client_id", "client_secret", "source")

    client_id: str
    client_secret: Secret
    source: str

    def __init__(self, client_id: str, client_secret: Secret | str, source: str = "") -> None:
        if not isinstance(client_secret, Secret):
            client_secret = Secret(client_secret)
        object.__setattr__(self, "client_id", client_id)
        object.__setattr__(self, "client_secret", client_secret)
        object.__setattr__(self, "source", source)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Credentials are immutable (cannot set {name!r})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Credentials are immutable (cannot delete {name!r})")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Credentials):
            return NotImplemented
        return self.client_id == other.client_id and self.client_secret == other.client_secret

    def __hash__(self) -> int:
        return hash((self.client_id, self.client_secret))

    def __copy__(self) -> Credentials:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Credentials:
        return self

    def __reduce_ex__(self, protocol: Any) -> Any:
        # The Secret refuses pickling with a clear message; let it say so.
        return (Credentials, (self.client_id, self.client_secret, self.source))

    def __repr__(self) -> str:
        return (
            f"Credentials(client_id={self.client_id!r}, client_secret={self.client_secret!r}, "
            f"source={self.source!r})"
        )
