"""The N3XT token exchange without I/O: build the request, validate the answer, classify failures.

Everything here is a pure function of its arguments (no sockets, no sleeping, no
locks; the only clock read is wall time, to date a ``Retry-After``), in the style of azure-identity's
``_get_client_secret_request``/``_process_response`` split: the sync and async
drivers in :mod:`n3xt_creds.authenticator` do the sending, this module decides what
the bytes mean.

N3XT's dialect: a ``POST`` with a JSON body ``{"client_id", "client_secret",
"grant_type": "client_credentials"}``, answered by
``{"status_code": 200, "expires_in": 3600, "request_id": "...", "access_token": "...",
"token_type": "bearer"}``; errors are JSON too, with ``error``/``error_description``.
"""

from __future__ import annotations

import enum
import json
import logging
import math
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from .._secret import Secret
from .._text import escape_controls
from ..credentials import Credentials
from ..errors import TokenRequestError
from .logfields import fields
from .retry import (
    display_url,
    header_value,
    http_failure,
    request_id_note,
    transport_error,
)

__all__ = [
    "DEFAULT_EXPIRES_IN",
    "EXPIRY_MARGIN",
    "MAX_BODY_BYTES",
    "Phase",
    "Token",
    "TokenRequest",
    "TokenResponse",
    "build_token_request",
    "display_url",
    "parse_token_response",
    "token_windows",
    "transport_error",
]

logger = logging.getLogger("n3xt_creds")

#: Lifetime assumed when an answer has no ``expires_in`` (N3XT documents one hour).
DEFAULT_EXPIRES_IN = 3600.0
#: Seconds before expiry at which a token counts as expired (callers wait for a new one).
EXPIRY_MARGIN = 30.0
#: A token answer is a few hundred bytes; anything this big is not one, and is not parsed.
MAX_BODY_BYTES = 1 << 20

# request_ids come from the server and end up in messages and logs: keep them to a
# short, printable, injection-free alphabet.
_SAFE_ID = re.compile(r"[^A-Za-z0-9._:/+=@-]")
# What may appear in an Authorization header value (RFC 9110 field-vchar, no spaces).
_HEADER_SAFE_TOKEN = re.compile(r"[\x21-\x7e]+")


class TokenRequest(NamedTuple):
    """The HTTP request to send to the token endpoint. The method is always ``POST``.

    ``content`` holds the client secret, so ``repr`` leaves it out.
    """

    url: str
    headers: dict[str, str]
    content: bytes

    @property
    def method(self) -> str:
        """Always ``POST``."""
        return "POST"

    def __repr__(self) -> str:
        return f"TokenRequest(method='POST', url={self.url!r}, content=<{len(self.content)} bytes>)"


class TokenResponse(NamedTuple):
    """What the driver got back from the token endpoint: status, headers and body.

    ``content`` may hold an access token, so ``repr`` shows only its length.
    ``body_problem`` says why ``content`` is not the whole answer (the sender stopped
    reading at :data:`MAX_BODY_BYTES`, or could not decode it); the body is then not
    parsed.
    """

    status_code: int
    headers: Mapping[str, str]
    content: bytes
    body_problem: str | None = None

    def __repr__(self) -> str:
        return f"TokenResponse(status_code={self.status_code}, content=<{len(self.content)} bytes>)"


class Phase(enum.Enum):
    """Where a token is in its life (see DESIGN, "Behaviour the authenticator guarantees")."""

    FRESH = "fresh"  # use it
    STALE = "stale"  # use it, and start a background refresh
    EXPIRED = "expired"  # do not use it: wait for a refresh


def token_windows(
    obtained_at: float, lifetime: float, refresh_margin: float, stale_jitter: float = 0.0
) -> tuple[float, float, float]:
    """Return ``(stale_at, expired_at, expires_at)`` for a token of ``lifetime`` seconds.

    Nominally the token goes stale ``refresh_margin`` seconds before expiry and counts
    as expired :data:`EXPIRY_MARGIN` (30 s) before it. Short-lived tokens scale both
    windows down so a token is used for most of its life: the stale phase starts no
    earlier than half-way, and the expired phase covers at most the last 10%. A
    3600 s token with a 300 s margin goes stale at +3300 and expires at +3570; a 2 s
    token is fresh for 1 s, stale until 1.8 s.

    ``stale_jitter`` (a fraction of the lifetime, drawn at random per token by the
    refresh flow) moves the stale point that much earlier, so that instances that got
    their tokens together do not refresh in step; never before half the lifetime — a
    token already going stale at half-way moves later instead, never past the
    expired point.
    """
    expired_lead = min(EXPIRY_MARGIN, 0.1 * lifetime)
    # A margin below the expiry margin would make "stale" start after "expired".
    stale_lead = max(min(refresh_margin, lifetime / 2), expired_lead)
    stale_at = obtained_at + (lifetime - stale_lead)
    expired_at = obtained_at + (lifetime - expired_lead)
    if stale_jitter > 0:
        shift = stale_jitter * lifetime
        half_way = obtained_at + lifetime / 2
        stale_at = (
            stale_at - shift if stale_at - shift >= half_way else min(stale_at + shift, expired_at)
        )
    return stale_at, expired_at, obtained_at + lifetime


class Token:
    """An access token with its lifetime, on the monotonic clock of whoever obtained it.

    ``repr``/``str`` never show the token; :meth:`value` returns it for the
    ``Authorization`` header. Instances are immutable.
    """

    __slots__ = (
        "access_token",
        "expired_at",
        "expires_at",
        "expires_in",
        "obtained_at",
        "request_id",
        "stale_at",
        "token_type",
    )

    access_token: Secret
    token_type: str
    expires_in: float
    request_id: str | None
    obtained_at: float
    stale_at: float
    expired_at: float
    expires_at: float

    def __init__(
        self,
        access_token: Secret | str,
        *,
        expires_in: float,
        obtained_at: float,
        refresh_margin: float,
        token_type: str = "bearer",
        request_id: str | None = None,
        stale_jitter: float = 0.0,
    ) -> None:
        if not (math.isfinite(expires_in) and expires_in > 0):
            raise ValueError(f"expires_in must be a positive number of seconds, not {expires_in!r}")
        stale_at, expired_at, expires_at = token_windows(
            obtained_at, expires_in, refresh_margin, stale_jitter
        )
        values = {
            "access_token": (
                access_token if isinstance(access_token, Secret) else Secret(access_token)
            ),
            "token_type": token_type,
            "expires_in": float(expires_in),
            "request_id": request_id,
            "obtained_at": obtained_at,
            "stale_at": stale_at,
            "expired_at": expired_at,
            "expires_at": expires_at,
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Token is immutable (cannot set {name!r})")

    def phase(self, now: float) -> Phase:
        """The token's phase at monotonic time ``now``."""
        if now < self.stale_at:
            return Phase.FRESH
        if now < self.expired_at:
            return Phase.STALE
        return Phase.EXPIRED

    def value(self) -> str:
        """The raw access token (no ``Bearer`` prefix). Send it; never log it."""
        return self.access_token.get_secret_value()

    def age(self, now: float) -> float:
        """Seconds since the token was requested."""
        return now - self.obtained_at

    def __repr__(self) -> str:
        return (
            f"Token(fingerprint={self.access_token.fingerprint}, expires_in={self.expires_in:g}, "
            f"request_id={self.request_id!r})"
        )

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("n3xt_creds Token refuses to be pickled: it holds an access token")

    def __copy__(self) -> Token:
        return self  # immutable: a copy would be indistinguishable

    def __deepcopy__(self, memo: dict[int, Any]) -> Token:
        return self


def build_token_request(token_url: str, credentials: Credentials) -> TokenRequest:
    """The client-credentials request N3XT expects: JSON body, JSON answer."""
    body = {
        "client_id": credentials.client_id,
        "client_secret": credentials.client_secret.get_secret_value(),
        "grant_type": "client_credentials",
    }
    return TokenRequest(
        url=token_url,
        headers={"Content-Type": "application/json", "Accept": "application/json"},
        content=json.dumps(body, separators=(",", ":")).encode("utf-8"),
    )


def parse_token_response(
    response: TokenResponse,
    *,
    obtained_at: float,
    refresh_margin: float,
    wall_clock_now: float | None = None,
    stale_jitter: float = 0.0,
) -> Token:
    """Validate the token endpoint's answer and return the :class:`Token`, or raise.

    ``obtained_at`` is the monotonic time the request was *sent* (so the lifetime is
    never overestimated). ``wall_clock_now`` (default ``time.time()``) is used only to
    read a ``Retry-After`` date when the answer has no ``Date`` header.
    ``stale_jitter`` is passed to :func:`token_windows`.

    Raises :class:`~n3xt_creds.InvalidClientError` (rejected credentials, final) or
    :class:`~n3xt_creds.TokenRequestError` with ``retryable``, ``status_code``,
    ``request_id`` and ``retry_after`` set. Never anything else, whatever the bytes.
    Messages never contain the body: it may hold a token.
    """
    status = response.status_code
    body, problem = _decode_json_object(response)
    request_id = _request_id(body, response.headers)
    if 200 <= status < 300:
        if body is None:
            raise _invalid_answer(response, problem, request_id)
        body_status = body.get("status_code", status)
        if isinstance(body_status, int) and not isinstance(body_status, bool):
            if body_status >= 400:
                # N3XT reports some failures inside a 200: honour what the body says.
                raise http_failure(
                    body_status,
                    http_status=status,
                    headers=response.headers,
                    body=body,
                    request_id=request_id,
                    wall_clock_now=wall_clock_now,
                )
            if 200 <= body_status < 300:
                return _token_from_body(
                    body,
                    request_id,
                    obtained_at,
                    refresh_margin,
                    response,
                    stale_jitter=stale_jitter,
                )
        raise _invalid_answer(response, "its status_code field does not say success", request_id)
    raise http_failure(
        status,
        http_status=status,
        headers=response.headers,
        body=body,
        request_id=request_id,
        wall_clock_now=wall_clock_now,
    )


def _decode_json_object(response: TokenResponse) -> tuple[dict[str, Any] | None, str]:
    """The body as a JSON object, or ``(None, what was wrong with it)``."""
    content = response.content
    if response.body_problem:
        return None, response.body_problem
    if not content:
        return None, "its body is empty"
    if len(content) > MAX_BODY_BYTES:
        return None, f"its body is {len(content)} bytes, far too large for a token answer"
    try:
        value = json.loads(content)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return None, "its body is not JSON"
    if not isinstance(value, dict):
        return None, f"its body is a JSON {_json_kind(value)}, not an object"
    return value, ""


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


def _request_id(body: Mapping[str, Any] | None, headers: Mapping[str, str]) -> str | None:
    candidate = body.get("request_id") if body is not None else None
    if not isinstance(candidate, str) or not candidate:
        candidate = header_value(headers, "x-request-id")
    if not candidate:
        return None
    return _SAFE_ID.sub("?", candidate)[:128]


def _describe_content(response: TokenResponse) -> str:
    content_type = header_value(response.headers, "content-type") or "no content-type"
    content_type = escape_controls(content_type.split(";")[0].strip(), 60) or "?"
    if response.body_problem:
        return f"{content_type}, not read in full"
    return f"{content_type}, {len(response.content)} bytes"


def _invalid_answer(
    response: TokenResponse, problem: str, request_id: str | None
) -> TokenRequestError:
    """A 2xx that is not a valid token answer: transient per DESIGN (a proxy, a bad deploy)."""
    status = response.status_code
    return TokenRequestError(
        f"The token endpoint answered HTTP {status} but not with a valid token: {problem} "
        f"({_describe_content(response)}){request_id_note(request_id)}. Retrying may help; if it "
        "persists, check that token_url points at N3XT's token endpoint and not a proxy "
        "or login page.",
        status_code=status,
        request_id=request_id,
        retryable=True,
    )


def _token_from_body(
    body: Mapping[str, Any],
    request_id: str | None,
    obtained_at: float,
    refresh_margin: float,
    response: TokenResponse,
    *,
    stale_jitter: float = 0.0,
) -> Token:
    def invalid(problem: str) -> TokenRequestError:
        return _invalid_answer(response, problem, request_id)

    access_token = body.get("access_token")
    if access_token is None:
        raise invalid("it has no access_token")
    if not isinstance(access_token, str):
        raise invalid(f"its access_token is a JSON {_json_kind(access_token)}, not a string")
    if not access_token:
        raise invalid("its access_token is empty")
    if not _HEADER_SAFE_TOKEN.fullmatch(access_token):
        raise invalid("its access_token has characters that cannot go in an HTTP header")

    token_type = body.get("token_type")
    if token_type is None:
        logger.warning(
            "The token answer has no token_type; assuming bearer%s",
            request_id_note(request_id),
            extra=fields("token_answer_defaulted", request_id=request_id),
        )
        token_type = "bearer"
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        shown = escape_controls(token_type, 20) if isinstance(token_type, str) else "non-string"
        raise invalid(f"its token_type is {shown!r}, not 'bearer'")

    expires_in = _expires_in(body.get("expires_in"), request_id)
    if isinstance(expires_in, str):
        raise invalid(expires_in)
    return Token(
        Secret(access_token),
        expires_in=expires_in,
        obtained_at=obtained_at,
        refresh_margin=refresh_margin,
        token_type="bearer",
        request_id=request_id,
        stale_jitter=stale_jitter,
    )


def _expires_in(value: object, request_id: str | None) -> float | str:
    """The lifetime in seconds, or a description of what is wrong with it.

    Accepted: a JSON number, or a string holding a decimal number (some gateways
    stringify numbers), finite and > 0. Missing or null means the documented
    :data:`DEFAULT_EXPIRES_IN`, with a warning.
    """
    if value is None:
        logger.warning(
            "The token answer has no expires_in; assuming %g s as N3XT documents%s",
            DEFAULT_EXPIRES_IN,
            request_id_note(request_id),
            extra=fields("token_answer_defaulted", request_id=request_id),
        )
        return DEFAULT_EXPIRES_IN
    if isinstance(value, bool):
        return "its expires_in is a boolean, not a number of seconds"
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:  # an int beyond float range: not a real lifetime
            seconds = math.inf
    elif isinstance(value, str) and re.fullmatch(r"\s*\d+(\.\d+)?\s*", value):
        seconds = float(value)
    else:
        return f"its expires_in is not a number of seconds (a JSON {_json_kind(value)})"
    if not math.isfinite(seconds) or seconds <= 0:
        return "its expires_in is not a positive, finite number of seconds"
    return seconds
