"""Exit codes of ``n3xt-creds``: one per failure class, so scripts can tell them apart."""

from __future__ import annotations

from ..errors import (
    ConfigError,
    CredentialsNotFoundError,
    InvalidClientError,
    SourceError,
    TokenRequestError,
)

__all__ = ["EXIT_CODES", "exit_code_for"]

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_CONFIG = 2
EXIT_NOT_FOUND = 3
EXIT_SOURCE = 4
EXIT_TOKEN = 5
EXIT_INVALID_CLIENT = 6
EXIT_INTERRUPTED = 130
EXIT_PIPE = 141  # 128 + SIGPIPE: what a shell reports for `cat` cut off by `head`

#: Failure class → exit code, most specific first.
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (ConfigError, EXIT_CONFIG),
    (CredentialsNotFoundError, EXIT_NOT_FOUND),
    (SourceError, EXIT_SOURCE),
    (InvalidClientError, EXIT_INVALID_CLIENT),
    (TokenRequestError, EXIT_TOKEN),
)


def exit_code_for(error: BaseException) -> int:
    """The exit code for ``error``'s failure class (1 for anything unexpected)."""
    for kind, code in EXIT_CODES:
        if isinstance(error, kind):
            return code
    return EXIT_UNEXPECTED
