"""The CredentialSource protocol every source implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..credentials import Credentials

__all__ = ["CredentialSource", "describe_source"]


@runtime_checkable
class CredentialSource(Protocol):
    """Anything that can produce N3XT :class:`~n3xt_creds.Credentials`.

    ``get_credentials()`` must do one of three things:

    * return :class:`~n3xt_creds.Credentials`;
    * raise :class:`~n3xt_creds.CredentialsNotFoundError` — "I have nothing here,
      try the next source" (variable unset, file absent, secret missing);
    * raise :class:`~n3xt_creds.SourceError` — "I should have had it and failed"
      (backend down, access denied, malformed secret).

    Sources are synchronous and read their backend on every call (no caching of the
    secret): the authenticator calls them once per token refresh, and again once when
    N3XT says ``invalid_client``, to pick up rotated credentials. The async path runs
    them in a worker thread. A source may also offer ``describe() -> str``, a one-line,
    secret-free description used in error messages and ``n3xt-creds check``.
    """

    def get_credentials(self) -> Credentials:
        """Read the credentials now (see the class docstring for the three outcomes)."""
        ...


def describe_source(source: object) -> str:
    """A one-line, secret-free description of ``source`` for messages and logs."""
    describe = getattr(source, "describe", None)
    if callable(describe):
        return str(describe())
    return type(source).__name__


def pickle_refusal(source: object) -> TypeError:
    """The error a source that holds secret values (or a Vault token) raises when pickled."""
    return TypeError(
        f"n3xt_creds.{type(source).__name__} refuses to be pickled: it holds secret values "
        "(or a token), and pickling would write them to wherever the pickle goes. Build "
        "the source in the other process instead."
    )
