"""Checks of the Authenticator's constructor arguments: fail at construction, clearly."""

from __future__ import annotations

import math

import httpx

from ..errors import ConfigError
from .hosts import is_loopback

__all__ = [
    "MAX_SECONDS",
    "checked_token_url",
    "non_empty_str",
    "positive_seconds",
    "token_url_problem",
]

#: The largest value each duration accepts, in seconds: past these a value is a mistake
#: (a unit slip: milliseconds given as seconds), and ~1e10 s overflows the platform's
#: wait limits. Settings validation uses the same table, so both refuse the same values.
MAX_SECONDS: dict[str, float] = {
    "timeout": 600.0,  # one token request: ten minutes is already absurd
    "refresh_margin": 86_400.0,  # a day before expiry
}
_DEFAULT_MAX_SECONDS = 86_400.0


def token_url_problem(token_url: object) -> str | None:
    """What makes ``token_url`` unsafe or unusable, worded to follow the key's name
    (``"token_url " + problem``); ``None`` when it is a good token endpoint URL.

    Shared by the Authenticator's constructor and settings validation, so both refuse
    exactly the same URLs with the same words.
    """
    if not isinstance(token_url, str) or not token_url.strip():
        return f"must be the N3XT token endpoint URL, got {token_url!r}"
    try:
        url = httpx.URL(token_url.strip())
    except httpx.InvalidURL as exc:
        return f"is not a valid URL ({exc})"
    if url.userinfo:
        # Checked first: every later message quotes the URL, which must not carry these.
        return "must not contain a user name or password; credentials come from the source"
    if not url.host or url.scheme not in ("https", "http"):
        return (
            "must be an absolute https URL with a host, like https://authn.alpha.n3xt.io/v1/"
            f"public/<project-id>/oauth2/token; got {token_url!r}"
        )
    if url.scheme == "http" and not is_loopback(url.host):
        return (
            "must use https (plain http is allowed only to loopback: localhost, 127.0.0.1, "
            f"::1): over plain http the client secret crosses the network in clear; got {token_url!r}"
        )
    return None


def checked_token_url(token_url: object) -> str:
    """``token_url`` as a normalised string, if it is a safe token endpoint URL."""
    problem = token_url_problem(token_url)
    if problem is not None:
        raise ConfigError(f"token_url {problem}", key="token_url")
    assert isinstance(token_url, str)
    return str(httpx.URL(token_url.strip()))


def positive_seconds(
    name: str, value: object, *, owner: str | None = None, maximum: float | None = None
) -> float:
    """``value`` as float seconds, if it is a finite number > 0 and at most ``maximum``
    (default: ``MAX_SECONDS[name]``, else a day).

    ``owner`` names the constructor (``"VaultSource"``) for the :class:`ConfigError`,
    so that settings can reword it for the file and key instead.
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigError(
            f"{name} must be a positive number of seconds, got {value!r}", key=name, owner=owner
        )
    limit = maximum if maximum is not None else MAX_SECONDS.get(name, _DEFAULT_MAX_SECONDS)
    if value > limit:
        raise ConfigError(
            f"{name} must be at most {limit:g} seconds, got {value:g} (a unit slip?)",
            key=name,
            owner=owner,
        )
    return float(value)


def non_empty_str(name: str, value: object, *, owner: str | None = None) -> str:
    """``value`` stripped, if it is a string with something besides whitespace.

    The value itself is never quoted (an argument in the wrong place may be a secret);
    the message says whether it was empty or of the wrong type.
    """
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, str):
        got = "an empty string" if not value else "only whitespace"
    else:
        got = type(value).__name__
    raise ConfigError(f"{name} must be a non-empty string, got {got}", key=name, owner=owner)
