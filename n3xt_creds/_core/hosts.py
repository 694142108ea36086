"""Which URLs may carry the N3XT token: the ``api_hosts`` allowlist.

A bearer token is as good as the client secret for as long as it lives, so it goes
only to https URLs whose host matches ``api_hosts``, and to loopback (plain http
allowed there) so that tests and the local emulator work. Every other request passes
through without it, and the first such request to each host logs a warning: a token
silently missing is easier to debug than a token silently leaked.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import logging
import re
import threading
from collections.abc import Iterable

from ..errors import ConfigError

__all__ = ["HostAllowlist", "is_loopback"]

logger = logging.getLogger("n3xt_creds")

_WILDCARDS = "*?["
# Host names (and IPv4 literals) with fnmatch wildcards; no scheme, port or path.
_PATTERN_CHARS = re.compile(r"^[a-z0-9.\-*?\[\]]+$")
# Decisions are cached per (scheme, host); a client that talks to unboundedly many
# hosts must not grow the cache without limit.
_MAX_CACHED_DECISIONS = 1024


def is_loopback(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ``::1`` (brackets optional)."""
    host = host.lower().strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HostAllowlist:
    """Decide, per URL, whether the token may be attached.

    ``patterns`` are host names, exact (``api.n3xt.io``) or with fnmatch wildcards
    (``*.n3xt.io`` matches every subdomain of ``n3xt.io``, at any depth). A pattern
    must name at least a registrable-looking domain after its last wildcard, so ``*``
    or ``*.io`` are refused: they would send the token to hosts outside N3XT.
    """

    def __init__(self, patterns: Iterable[str]) -> None:
        if isinstance(patterns, str | bytes):
            raise ConfigError(
                f"api_hosts must be a list of host patterns, not a single string ({patterns!r}); "
                f'write api_hosts=["{patterns!s}"]',
                key="api_hosts",
            )
        self.patterns: tuple[str, ...] = tuple(_checked_pattern(p) for p in patterns)
        self._exact = frozenset(p for p in self.patterns if not _has_wildcard(p))
        self._wildcards = tuple(p for p in self.patterns if _has_wildcard(p))
        self._decisions: dict[tuple[str, str], bool] = {}
        self._warned: set[str] = set()
        self._warn_lock = threading.Lock()

    def allows(self, scheme: str, host: str) -> bool:
        """True when a request to ``scheme://host`` may carry the token.

        The first refusal for each host logs a warning (names the host, never the token).
        """
        decision = self._decisions.get((scheme, host))
        if decision is None:
            decision = self._decide(scheme, host)
            if len(self._decisions) >= _MAX_CACHED_DECISIONS:
                self._decisions.clear()
            self._decisions[(scheme, host)] = decision
        if not decision:
            self._warn_once(scheme, host)
        return decision

    def _decide(self, scheme: str, host: str) -> bool:
        scheme = scheme.lower()
        host = host.lower().rstrip(".")
        if is_loopback(host):
            return scheme in ("http", "https")
        if scheme != "https":
            return False
        return host in self._exact or any(fnmatch.fnmatchcase(host, p) for p in self._wildcards)

    def _warn_once(self, scheme: str, host: str) -> None:
        if host in self._warned:  # unlocked pre-check: the common case after the first time
            return
        with self._warn_lock:
            if host in self._warned:
                return
            self._warned.add(host)
        reason = (
            "plain http is only allowed to loopback"
            if scheme.lower() != "https"
            else f"the host is not in api_hosts {list(self.patterns)}"
        )
        logger.warning(
            "Not sending the N3XT token to %s://%s: %s. The request goes out without it "
            "(this warning is logged once per host).",
            scheme,
            host,
            reason,
        )

    def reset_after_fork(self) -> None:
        """Give the child process its own lock (the parent's may have been held at fork)."""
        self._warn_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"HostAllowlist({list(self.patterns)!r})"


def _has_wildcard(pattern: str) -> bool:
    return any(c in pattern for c in _WILDCARDS)


def _checked_pattern(pattern: object) -> str:
    if not isinstance(pattern, str):
        raise ConfigError(
            f"api_hosts entries must be strings, got {type(pattern).__name__} ({pattern!r})",
            key="api_hosts",
        )
    cleaned = pattern.strip().lower().rstrip(".")
    if not cleaned or not _PATTERN_CHARS.match(cleaned):
        raise ConfigError(
            f"api_hosts entry {pattern!r} is not a host name pattern: give host names only "
            "(like 'api.n3xt.io' or '*.n3xt.io'), without scheme, port or path",
            key="api_hosts",
        )
    if _has_wildcard(cleaned):
        tail = re.split(r"[*?\[\]]", cleaned)[-1]
        if len([label for label in tail.split(".") if label]) < 2:
            raise ConfigError(
                f"api_hosts entry {pattern!r} matches too much: the token would go to hosts "
                "outside N3XT. Name the domain after the wildcard, like '*.n3xt.io'",
                key="api_hosts",
            )
    return cleaned
