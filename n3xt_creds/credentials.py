"""Credentials: the client_id / client_secret pair a source hands to the authenticator."""

from __future__ import annotations

from dataclasses import dataclass, field

from ._secret import Secret

__all__ = ["Credentials"]


@dataclass(frozen=True)
class Credentials:
    """An N3XT client_id and its client_secret, as read from one source.

    ``client_secret`` is a :class:`~n3xt_creds.Secret`, so printing or logging a
    ``Credentials`` never shows it. ``source`` is a human description of where the
    pair came from (``"env:N3XT_CLIENT_ID"``, ``"vault:secret/n3xt/api"``), for logs
    and ``n3xt-creds check``. A plain ``str`` secret is wrapped on construction.
    """

    client_id: str
    client_secret: Secret
    source: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.client_secret, Secret):
            object.__setattr__(self, "client_secret", Secret(self.client_secret))

    def __repr__(self) -> str:
        return (
            f"Credentials(client_id={self.client_id!r}, client_secret={self.client_secret!r}, "
            f"source={self.source!r})"
        )
