"""Retry policy for token requests: how many attempts, how long to wait, when to stop.

Pure functions only (no sleeping, no clock reading): the refresh flow in
:mod:`n3xt_creds._flow` asks these for a number and yields a ``Sleep`` for it.
"""

from __future__ import annotations

import datetime
import email.utils
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import ConfigError

__all__ = ["RetryPolicy", "backoff_delay", "header_value", "parse_retry_after"]

# 2**62 already dwarfs any max_delay; capping the exponent keeps the float finite
# however many attempts a policy allows.
_MAX_EXPONENT = 62


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds on retrying a failed token request.

    ``max_attempts`` counts token requests in one refresh (the first one included);
    retries wait ``uniform(0, min(max_delay, base_delay * 2**n))`` seconds after the
    n-th consecutive transient failure (exponential backoff with full jitter, so a
    herd of processes spreads out), or exactly the server's ``Retry-After``. No retry
    is scheduled that would start after ``deadline`` seconds from the start of the
    refresh; a ``Retry-After`` longer than the time left ends the refresh at once.
    """

    max_attempts: int = 5
    base_delay: float = 0.1
    max_delay: float = 5.0
    deadline: float = 30.0

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            raise ConfigError(
                f"RetryPolicy.max_attempts must be an int, not {type(self.max_attempts).__name__}",
                key="retry.max_attempts",
            )
        if self.max_attempts < 1:
            raise ConfigError(
                f"RetryPolicy.max_attempts must be at least 1 (got {self.max_attempts})",
                key="retry.max_attempts",
            )
        for name in ("base_delay", "max_delay", "deadline"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value < 0
            ):
                raise ConfigError(
                    f"RetryPolicy.{name} must be a finite number of seconds >= 0 (got {value!r})",
                    key=f"retry.{name}",
                )
        if self.deadline <= 0:
            raise ConfigError(
                f"RetryPolicy.deadline must be positive (got {self.deadline!r}): it bounds "
                "the whole refresh, first attempt included",
                key="retry.deadline",
            )


def backoff_delay(policy: RetryPolicy, failures: int, rng: random.Random) -> float:
    """Seconds to wait after ``failures`` consecutive transient failures (``failures >= 1``).

    Full jitter (AWS architecture blog, "Exponential Backoff And Jitter"): uniform
    over ``[0, min(max_delay, base_delay * 2**(failures - 1))]``.
    """
    exponent = min(max(failures - 1, 0), _MAX_EXPONENT)
    cap = min(policy.max_delay, policy.base_delay * 2.0**exponent)
    return rng.uniform(0.0, cap)


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds the server asked us to wait, from ``Retry-After``; ``None`` if absent or unreadable.

    Both RFC 9110 forms are understood: delay-seconds (``"120"``; fractions are
    tolerated) and an HTTP-date. A date is measured against the answer's own ``Date``
    header when it has one — both stamps come from the server's clock, so our clock's
    skew does not matter — else against ``now`` (wall-clock seconds since the epoch;
    the caller passes ``time.time()``). Dates in the past mean "now": ``0.0``.
    """
    raw = header_value(headers, "retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    when = _http_date(raw)
    if when is None:
        return None
    server_now = _http_date(header_value(headers, "date") or "")
    reference = server_now if server_now is not None else now
    if reference is None:
        return None
    return max(0.0, when - reference)


def header_value(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup that works for plain dicts as well as ``httpx.Headers``."""
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, candidate in headers.items():
        if key.lower() == lowered:
            return candidate
    return None


def _http_date(text: str) -> float | None:
    if not text:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:  # "-0000" or a zone-less date: RFC 9110 dates are GMT
        return parsed.replace(tzinfo=datetime.timezone.utc).timestamp()
    return parsed.timestamp()
