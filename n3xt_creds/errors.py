"""The errors n3xt_creds raises, and what each one means for the caller.

Every error is an :class:`N3XTCredsError`, so one ``except`` catches them all::

    N3XTCredsError                  anything n3xt_creds raises on purpose
    ├── ConfigError                 bad or missing settings (names the key, file and environment)
    ├── CredentialsNotFoundError    no source had credentials ("nothing here, try the next one")
    ├── SourceError                 a backend failed (unreachable, denied, sealed, malformed secret)
    ├── TokenRequestError           the token endpoint failed (.status_code, .request_id)
    │     └── InvalidClientError    the endpoint rejected the credentials
    └── AuthenticatorClosedError    a token was needed after close() (also a RuntimeError)

Messages are written for the person on call: they name the setting, file, variable,
source or ``request_id`` involved and say what to do next. They never contain a
client secret, an access token or a Vault token — only names, paths and fingerprints.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "AuthenticatorClosedError",
    "ConfigError",
    "CredentialsNotFoundError",
    "InvalidClientError",
    "N3XTCredsError",
    "SourceError",
    "TokenRequestError",
]


class N3XTCredsError(Exception):
    """Base class of every error raised by n3xt_creds on purpose."""


class ConfigError(N3XTCredsError, ValueError):
    """Settings or constructor arguments are missing, malformed or unsafe.

    Raised before any network call: fix the named key, file or argument and restart.
    ``key``, ``path`` and ``env`` say where the problem is when known. A constructor
    passes ``owner`` (``"VaultSource"``) and words ``message`` without it; ``problem``
    keeps that wording so that settings can name the file and key instead.
    """

    def __init__(
        self,
        message: str,
        *,
        key: str | None = None,
        path: str | None = None,
        env: str | None = None,
        owner: str | None = None,
    ) -> None:
        super().__init__(f"{owner}: {message}" if owner else message)
        self.key = key
        self.path = path
        self.env = env
        self.owner = owner
        #: The message without its owner, for a caller that words it for another place
        #: (the settings layer says which file and key instead of which constructor).
        self.problem = message


class CredentialsNotFoundError(N3XTCredsError):
    """A source has no credentials where it looked: "nothing here, try the next".

    ``source`` names the source; ``looked_for`` lists exactly what it looked for
    (variable names, file paths, secret ids) so the message can say it. A
    :class:`~n3xt_creds.ChainSource` moves on to its next source on this error,
    and when every source raised it, ``attempts`` holds each source's own error.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        looked_for: Sequence[str] = (),
        attempts: Sequence[CredentialsNotFoundError] = (),
    ) -> None:
        super().__init__(message)
        self.source = source
        self.looked_for = tuple(looked_for)
        self.attempts = tuple(attempts)


class SourceError(N3XTCredsError):
    """A source should have had credentials and failed to produce them.

    Examples: Vault sealed or permission denied, AWS access denied, a secret file
    that cannot be read, a secret that is not valid JSON. A chain does *not* move on
    past this error: a broken backend must be fixed, not silently skipped.
    ``retryable`` is true when trying again later may succeed (outage, throttling).
    """

    def __init__(self, message: str, *, source: str | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.source = source
        self.retryable = retryable


class TokenRequestError(N3XTCredsError):
    """The N3XT token endpoint did not give us a usable token.

    ``status_code`` is the HTTP status (``None`` when no answer arrived: connection
    refused, timeout), ``request_id`` is N3XT's id for the request when the answer had
    one — quote it to N3XT support. ``retryable`` tells whether the failure was
    transient (connection errors, timeouts, 429, 5xx, garbage bodies).
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        request_id: str | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.request_id = request_id
        self.retryable = retryable
        self.retry_after = retry_after


class InvalidClientError(TokenRequestError):
    """The token endpoint rejected the client_id/client_secret pair (401 ``invalid_client``).

    The authenticator has already re-read the credentials once from the source in
    case they were rotated; seeing this error means the source still serves a pair
    that N3XT does not accept. Update the secret where the source reads it.
    """


class AuthenticatorClosedError(N3XTCredsError, RuntimeError):
    """A token was needed after :meth:`~n3xt_creds.Authenticator.close` (or ``aclose``).

    A closed authenticator still hands out a token it holds that is still fresh, but it
    never makes another token request: its HTTP connections are gone. This is a bug in
    the application's lifecycle (a client used after its ``with`` block, a shutdown
    hook that ran too early): build a new Authenticator, or close this one later. Also
    a ``RuntimeError``, which it was before it had a type of its own.
    """
