"""Keep the secret out of botocore's DEBUG logs while *our* GetSecretValue runs.

With DEBUG logging on, ``botocore.parsers`` logs every response body
(``Response body: b'{"SecretString": ...}'``) and ``botocore.endpoint`` logs every
request with its signed headers (an ``X-Amz-Security-Token`` included). An app that
turns on DEBUG to debug its own AWS calls would write our client secret to its logs.

:func:`quiet_botocore` installs, once per process, a filter on those loggers that
drops their records only while a call made through :func:`reading` runs in the
current thread or task (a :class:`contextvars.ContextVar`), so the application's own
boto3 calls keep their DEBUG logs.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
from collections.abc import Iterator

__all__ = ["QUIET_LOGGERS", "quiet_botocore", "reading"]

#: The botocore loggers whose records may carry a response body or signed headers.
QUIET_LOGGERS = ("botocore.parsers", "botocore.endpoint", "botocore.retryhandler", "botocore.hooks")

_READING: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "n3xt_creds_aws_read", default=False
)
_installed: list[bool] = []  # one True once installed (a list: no `global` needed)
_install_lock = threading.Lock()


class _DuringOurRead(logging.Filter):
    """Drops a record logged while one of our secret reads runs in this context."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _READING.get()


def quiet_botocore() -> None:
    """Install the filter on :data:`QUIET_LOGGERS` (idempotent, thread-safe)."""
    if _installed:
        return
    with _install_lock:
        if not _installed:
            quiet = _DuringOurRead("n3xt_creds.aws")
            for name in QUIET_LOGGERS:
                logging.getLogger(name).addFilter(quiet)
            _installed.append(True)


@contextlib.contextmanager
def reading() -> Iterator[None]:
    """Mark the calls made inside as our secret reads (their botocore logs are dropped)."""
    token = _READING.set(True)
    try:
        yield
    finally:
        _READING.reset(token)
