"""Checks of the Authenticator's constructor arguments: fail at construction, clearly."""

from __future__ import annotations

import math

import httpx

from ._hosts import is_loopback
from .errors import ConfigError

__all__ = ["checked_token_url", "positive_seconds"]


def checked_token_url(token_url: object) -> str:
    """``token_url`` as a normalised string, if it is a safe token endpoint URL."""
    if not isinstance(token_url, str) or not token_url.strip():
        raise ConfigError(
            f"token_url must be the N3XT token endpoint URL, got {token_url!r}", key="token_url"
        )
    try:
        url = httpx.URL(token_url.strip())
    except httpx.InvalidURL as exc:
        raise ConfigError(
            f"token_url {token_url!r} is not a valid URL: {exc}", key="token_url"
        ) from None
    if url.userinfo:
        raise ConfigError(
            "token_url must not contain a user name or password; credentials come from the source",
            key="token_url",
        )
    if not url.host or url.scheme not in ("https", "http"):
        raise ConfigError(
            f"token_url must be an https URL like https://authn.alpha.n3xt.io/v1/public/"
            f"<project-id>/oauth2/token, got {token_url!r}",
            key="token_url",
        )
    if url.scheme == "http" and not is_loopback(url.host):
        raise ConfigError(
            f"token_url {token_url!r} uses plain http: the client secret would cross the "
            "network in clear. Use https (plain http is allowed only to localhost/127.0.0.1/::1)",
            key="token_url",
        )
    return str(url)


def positive_seconds(name: str, value: object) -> float:
    """``value`` as float seconds, if it is a finite number > 0."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigError(f"{name} must be a positive number of seconds, got {value!r}", key=name)
    return float(value)
