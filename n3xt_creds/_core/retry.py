"""Failures of the token request: which are worth retrying, what they say, when to retry.

* :func:`http_failure` and :func:`transport_error` turn a failed answer, or no
  answer at all, into the right :class:`~n3xt_creds.TokenRequestError` — final or
  retryable, with ``status_code``, ``request_id``, ``retry_after`` and a message for
  the person on call that never quotes a body;
* :class:`RetryPolicy`, :func:`backoff_delay` and :func:`parse_retry_after` say how
  often and how long to wait.

Pure functions only (no sleeping, no I/O): the refresh flow in
:mod:`n3xt_creds._core.flow` asks these for a verdict and a number, and yields a ``Sleep``.
"""

from __future__ import annotations

import datetime
import email.utils
import errno
import math
import random
import time
import urllib.parse
from collections.abc import Mapping
from typing import Any

import httpx

from .._text import escape_controls
from ..errors import ConfigError, InvalidClientError, TokenRequestError

__all__ = [
    "RetryPolicy",
    "backoff_delay",
    "display_url",
    "header_value",
    "http_failure",
    "parse_retry_after",
    "request_id_note",
    "transport_error",
]

# 2**62 already dwarfs any max_delay; capping the exponent keeps the float finite
# however many attempts a policy allows.
_MAX_EXPONENT = 62


class RetryPolicy:
    """Bounds on retrying a failed token request.

    ``max_attempts`` counts token requests in one refresh (the first one included);
    retries wait ``uniform(0, min(max_delay, base_delay * 2**n))`` seconds after the
    n-th consecutive transient failure (exponential backoff with full jitter, so a
    herd of processes spreads out), or exactly the server's ``Retry-After``. No retry
    is scheduled that would start after ``deadline`` seconds from the start of the
    refresh; a ``Retry-After`` longer than the time left ends the refresh at once.
    Immutable and validated on construction (:class:`~n3xt_creds.ConfigError`).
    """

    # A plain immutable class, not a frozen dataclass: creating a dataclass costs ~1 ms
    # at import time, and `import n3xt_creds` must stay cheap.
    __slots__ = ("base_delay", "deadline", "max_attempts", "max_delay")

    max_attempts: int
    base_delay: float
    max_delay: float
    deadline: float

    def __init__(
        self,
        max_attempts: int = 5,
        base_delay: float = 0.1,
        max_delay: float = 5.0,
        deadline: float = 30.0,
    ) -> None:
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int):
            raise ConfigError(
                f"RetryPolicy.max_attempts must be an int, not {type(max_attempts).__name__}",
                key="retry.max_attempts",
            )
        if max_attempts < 1:
            raise ConfigError(
                f"RetryPolicy.max_attempts must be at least 1 (got {max_attempts})",
                key="retry.max_attempts",
            )
        seconds = {"base_delay": base_delay, "max_delay": max_delay, "deadline": deadline}
        for name, value in seconds.items():
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
        if deadline <= 0:
            raise ConfigError(
                f"RetryPolicy.deadline must be positive (got {deadline!r}): it bounds "
                "the whole refresh, first attempt included",
                key="retry.deadline",
            )
        object.__setattr__(self, "max_attempts", max_attempts)
        for name, value in seconds.items():
            object.__setattr__(self, name, value)

    def _fields(self) -> tuple[int, float, float, float]:
        return (self.max_attempts, self.base_delay, self.max_delay, self.deadline)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"RetryPolicy is immutable; build a new one (cannot set {name!r})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"RetryPolicy is immutable (cannot delete {name!r})")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RetryPolicy):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return (
            f"RetryPolicy(max_attempts={self.max_attempts}, base_delay={self.base_delay}, "
            f"max_delay={self.max_delay}, deadline={self.deadline})"
        )

    def __reduce__(self) -> tuple[type[RetryPolicy], tuple[int, float, float, float]]:
        return (RetryPolicy, self._fields())


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


def transport_error(exc: BaseException, *, url: str) -> TokenRequestError:
    """Turn a failure to get any answer (connect, timeout, reset) into a TokenRequestError.

    Everything that might work on a second try is retryable; a URL httpx cannot
    send to at all (``UnsupportedProtocol``) is final, and so is running out of file
    descriptors (EMFILE/ENFILE: a local limit, not the network). The message names the URL and
    the kind of failure; the original exception is not chained (its request holds
    the secret), its type and message are quoted instead.
    """
    kind, retryable = _transport_kind(exc)
    detail = escape_controls(str(exc), 200)
    message = (
        f"Token request to {display_url(url)} failed: {kind} ({type(exc).__name__}"
        f"{': ' + detail if detail else ''})."
    )
    if retryable:
        message += " This is usually transient; it is retried within the retry policy."
    return TokenRequestError(message, status_code=None, retryable=retryable)


def display_url(url: str) -> str:
    """``url`` fit for messages and logs: any ``user:password@`` part is dropped."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


# Failures of this process, not of the network: another try cannot help and only
# burns the descriptors or memory that are missing.
_LOCAL_RESOURCE_ERRNOS = {
    errno.EMFILE: "this process has too many open files (EMFILE: the per-process "
    "descriptor limit, ulimit -n, is reached)",
    errno.ENFILE: "the system has too many open files (ENFILE: the system-wide "
    "descriptor table is full)",
}


def _local_resource_error(exc: BaseException) -> str | None:
    """What local resource ran out, if ``exc`` or an exception it chains is EMFILE/ENFILE."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _LOCAL_RESOURCE_ERRNOS:
            return _LOCAL_RESOURCE_ERRNOS[current.errno]
        current = current.__cause__ or current.__context__
    return None


def _transport_kind(exc: BaseException) -> tuple[str, bool]:
    local = _local_resource_error(exc)
    if local is not None:
        return (
            f"a local resource error, not a network failure: {local}. It is not retried; "
            "close unused clients and authenticators (share one per process) or raise the "
            "limit",
            False,
        )
    kinds: list[tuple[type[BaseException], str, bool]] = [
        (httpx.ConnectTimeout, "timed out connecting", True),
        (httpx.ReadTimeout, "timed out waiting for the answer", True),
        (httpx.WriteTimeout, "timed out sending the request", True),
        (httpx.PoolTimeout, "timed out waiting for a free connection in the pool", True),
        (httpx.TimeoutException, "timed out", True),
        (httpx.ProxyError, "the proxy failed", True),
        (httpx.ConnectError, "could not connect (refused, unreachable, DNS or TLS failure)", True),
        (httpx.RemoteProtocolError, "the server closed the connection or broke HTTP", True),
        (httpx.ReadError, "the connection failed while reading the answer", True),
        (httpx.WriteError, "the connection failed while sending the request", True),
        (httpx.UnsupportedProtocol, "the URL scheme is not http or https", False),
        (httpx.TransportError, "the HTTP transport failed", True),
        (TimeoutError, "timed out", True),
        (OSError, "a network error occurred", True),
    ]
    for exc_type, kind, retryable in kinds:
        if isinstance(exc, exc_type):
            return kind, retryable
    return "an unexpected error occurred in the HTTP client", True


def request_id_note(request_id: str | None) -> str:
    """``" [request_id X]"`` for messages, or nothing."""
    return f" [request_id {request_id}]" if request_id else ""


_FINAL_HINTS = {
    400: "the token endpoint refused the request as malformed",
    403: "the client is not allowed to get a token (check its permissions with N3XT)",
    404: "no token endpoint at this URL: check token_url and the project id in it",
    405: "the URL does not accept POST: check token_url",
    415: "the endpoint requires a JSON body (Content-Type: application/json); "
    "a proxy may have rewritten the request",
}


def http_failure(
    status: int,
    *,
    http_status: int,
    headers: Mapping[str, str],
    body: Mapping[str, Any] | None,
    request_id: str | None,
    wall_clock_now: float | None = None,
) -> TokenRequestError:
    """Classify a failure answer: rejected client (InvalidClientError), transient, or final.

    ``status`` is the failure status: the HTTP status, or the ``status_code`` a 2xx
    body reported (``http_status`` is then the real one). 401 or ``invalid_client``
    means rejected credentials; 408, 429 and 5xx are transient (``retry_after`` read
    from ``Retry-After``); everything else is final, with a hint for the usual causes.
    Only the ``error``/``error_description`` fields of ``body`` are quoted, control characters escaped.
    """
    error_code = _safe_field(body, "error", 64)
    description = _safe_field(body, "error_description", 200)
    said = ""
    if error_code:
        said = f": {error_code}" + (f" ({description})" if description else "")
    elif description:
        said = f": {description}"
    where = (
        f"HTTP {status}"
        if status == http_status
        else f"status_code {status} in the body of an HTTP {http_status} answer"
    )
    if status == 401 or error_code == "invalid_client":
        return InvalidClientError(
            f"The token endpoint rejected the client credentials ({where}{said}){request_id_note(request_id)}. "
            "Check the client_id and client_secret your source serves.",
            status_code=status,
            request_id=request_id,
        )
    if status in (408, 429) or status >= 500:
        retry_after = parse_retry_after(
            headers, now=time.time() if wall_clock_now is None else wall_clock_now
        )
        return TokenRequestError(
            f"The token endpoint is unavailable or throttling ({where}{said})"
            f"{request_id_note(request_id)}. This is transient; it is retried within the retry policy.",
            status_code=status,
            request_id=request_id,
            retryable=True,
            retry_after=retry_after,
        )
    if 300 <= status < 400:
        hint = "the token endpoint redirected; set token_url to the final URL"
    elif status < 200:
        hint = "unexpected informational answer"
    else:
        hint = _FINAL_HINTS.get(status, "the token endpoint refused the request")
    return TokenRequestError(
        f"Token request failed ({where}{said}){request_id_note(request_id)}: {hint}.",
        status_code=status,
        request_id=request_id,
        retryable=False,
    )


def _safe_field(body: Mapping[str, Any] | None, name: str, limit: int) -> str:
    value = body.get(name) if body is not None else None
    if not isinstance(value, str):
        return ""
    return escape_controls(value, limit)
