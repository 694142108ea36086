"""The retry loop of the Vault and AWS sources, in the core's vocabulary.

Both sources take a :class:`~n3xt_creds.RetryPolicy` (the one the Authenticator
uses for token requests): ``max_attempts`` reads in one ``get_credentials()`` call,
full-jitter backoff from ``base_delay`` capped at ``max_delay`` (the core's
:func:`~n3xt_creds._core.retry.backoff_delay`), and no retry that would start after
``deadline`` seconds from the first attempt — a ``Retry-After`` longer than the time
left ends the attempts at once (the authenticator keeps its last good credentials).

The error that ends the attempts is raised after leaving the ``except`` block, and
the failure it describes is kept without its traceback: nothing the backend library
had in its frames (request headers with a token, a response body) stays reachable
from the error the caller sees.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import TypeVar

from .._core.retry import RetryPolicy, backoff_delay
from .._text import escape_controls
from ..errors import N3XTCredsError
from .options import SourceOptions

__all__ = ["NO_RETRY_AFTER", "call_with_retries", "retry_from_options"]

_T = TypeVar("_T")
_log = logging.getLogger("n3xt_creds")

#: What a failure means: ``None`` = final (re-raised as is), else the server's
#: ``Retry-After`` in seconds or ``-1.0`` when it gave none.
Classify = Callable[[Exception], "float | None"]
NO_RETRY_AFTER = -1.0


def call_with_retries(
    operation: Callable[[], _T],
    *,
    policy: RetryPolicy,
    classify: Classify,
    give_up: Callable[[Exception, int], N3XTCredsError],
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    rng: random.Random,
    label: str,
) -> _T:
    """Run ``operation`` until it returns, a final failure, or ``policy`` says stop.

    ``classify(error)`` says whether an exception is worth another attempt (see
    :data:`Classify`); a final one propagates unchanged. When the attempts or the
    deadline are used up, ``give_up(error, attempts)`` builds the error raised.
    ``label`` starts the warning logged before each retry (``"vault"``, ``"aws"``).
    """
    start = clock()
    attempts = 0
    while True:
        attempts += 1
        failure: Exception | None = None
        retry_after: float | None = None
        try:
            return operation()
        except Exception as exc:
            retry_after = classify(exc)
            if retry_after is None:
                raise
            # Keep the failure for the message, not the library frames it went through.
            failure = exc.with_traceback(None)
            failure.__context__ = None
        if attempts >= policy.max_attempts:
            raise give_up(failure, attempts)
        backoff = min(policy.max_delay, policy.base_delay * 2.0 ** min(attempts - 1, 62))
        if retry_after < 0:
            delay = backoff_delay(policy, attempts, rng)
        else:
            # Servers round Retry-After down to whole seconds and say 0 when the window
            # reopens within the second: never wait less than the plain backoff.
            delay = max(retry_after, backoff)
        if clock() - start + delay > policy.deadline:
            raise give_up(failure, attempts)
        _log.warning(
            "%s: attempt %d failed (%s); retrying in %.2fs",
            label,
            attempts,
            escape_controls(failure, 200),
            delay,
        )
        sleep(delay)


def retry_from_options(options: SourceOptions, default: RetryPolicy) -> RetryPolicy:
    """The RetryPolicy of a source's settings table: keys ``max_attempts``,
    ``base_delay``, ``max_delay`` and ``deadline`` (the names of RetryPolicy's fields),
    each defaulting to ``default``'s value."""
    fields = {
        "max_attempts": options.get_int("max_attempts", default.max_attempts, positive=True),
        "base_delay": options.get_float("base_delay", default.base_delay, minimum=0),
        "max_delay": options.get_float("max_delay", default.max_delay, minimum=0),
        "deadline": options.get_float("deadline", default.deadline, positive=True),
    }
    return RetryPolicy(**fields)
