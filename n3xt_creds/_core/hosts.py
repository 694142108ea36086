"""Which URLs may carry the N3XT token: the ``api_hosts`` allowlist.

A bearer token is as good as the client secret for as long as it lives, so it goes
only to https URLs whose host matches ``api_hosts``. Loopback (plain http allowed
there) gets it only when ``api_hosts`` lists it or when ``token_url`` is itself
loopback (local testing against the emulator): a sidecar on ``localhost`` never sees a
production token. Every other request passes through without it, and the first such
request to each host logs a warning: a token silently missing is easier to debug than
a token silently leaked.

Patterns are checked when the allowlist is built: a wildcard must stand for whole
leftmost labels of a domain that is not a public suffix (``*.n3xt.io``), so ``*``,
``*n3xt.io`` (which matches ``eviln3xt.io``), ``*.com``, ``*.co.uk`` or ``*.github.io``
are refused with a :class:`~n3xt_creds.ConfigError` that shows the intended form. The
public suffixes come from the Public Suffix List (the ``publicsuffixlist`` package,
loaded on first use of a custom wildcard pattern).
"""

from __future__ import annotations

import fnmatch
import functools
import ipaddress
import logging
import re
import threading
from collections.abc import Iterable
from typing import Any

from .._text import escape_controls
from ..errors import ConfigError
from .logfields import fields

__all__ = ["HostAllowlist", "is_loopback"]

logger = logging.getLogger("n3xt_creds")

_WILDCARDS = "*?["
_WILDCARD_CHARS = re.compile(r"[*?\[\]]")
# Host names (and IPv4 literals) with fnmatch wildcards; no scheme, port or path.
_PATTERN_CHARS = re.compile(r"^[a-z0-9.\-*?\[\]]+$")
# Decisions are cached per (scheme, host), and refused hosts remembered for the
# once-per-host warning: a client that talks to unboundedly many hosts must grow
# neither without limit.
_MAX_CACHED_DECISIONS = 1024
_MAX_WARNED_HOSTS = 1024
# Known good without consulting the Public Suffix List (which costs ~40 ms to load).
_KNOWN_PRIVATE_DOMAINS = frozenset({"n3xt.io"})


def is_loopback(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ``::1`` (brackets optional).

    ``localhost.`` (with the trailing dot) is not loopback: an absolute name goes to
    DNS, which may resolve it anywhere.
    """
    host = host.lower().strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HostAllowlist:
    """Decide, per URL, whether the token may be attached.

    ``patterns`` are host names, exact (``api.n3xt.io``, ``localhost``, ``127.0.0.1``,
    ``::1``) or with fnmatch wildcards (``*.n3xt.io`` matches every subdomain of
    ``n3xt.io``, at any depth). A wildcard must be followed by a dot and a domain that
    is not a public suffix. ``loopback=True`` (the token endpoint itself is loopback:
    local testing) lets every loopback host have the token; otherwise only the loopback
    hosts listed in ``patterns`` do.
    """

    def __init__(self, patterns: Iterable[str], *, loopback: bool = False) -> None:
        if isinstance(patterns, str | bytes):
            raise ConfigError(
                f"api_hosts must be a list of host patterns, not a single string ({patterns!r}); "
                f'write api_hosts=["{patterns!s}"]',
                key="api_hosts",
            )
        self.patterns: tuple[str, ...] = tuple(_checked_pattern(p) for p in patterns)
        self.loopback = bool(loopback)
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
        host = host.lower()
        bare = host.rstrip(".")
        if bare != host and is_loopback(bare):
            return False  # "localhost." is resolved through DNS: not loopback
        if is_loopback(host):
            return scheme in ("http", "https") and (self.loopback or self._listed(host))
        if scheme != "https":
            return False
        return self._listed(bare)

    def _listed(self, host: str) -> bool:
        host = _normal_ip(host) or host
        return host in self._exact or any(fnmatch.fnmatchcase(host, p) for p in self._wildcards)

    def _warn_once(self, scheme: str, host: str) -> None:
        if host in self._warned:  # unlocked pre-check: the common case after the first time
            return
        with self._warn_lock:
            if host in self._warned:
                return
            if len(self._warned) >= _MAX_WARNED_HOSTS:
                # Bounded like the decision cache: past this many refused hosts a host
                # may be warned about again, memory stays flat.
                self._warned.clear()
            self._warned.add(host)
        lowered = host.lower()
        if lowered.rstrip(".") != lowered and is_loopback(lowered.rstrip(".")):
            reason = "a name with a trailing dot is resolved through DNS, it is not loopback"
        elif is_loopback(lowered):
            reason = (
                "loopback gets the token only when api_hosts lists it or when token_url "
                "is itself loopback (a sidecar on localhost must not see it)"
            )
        elif scheme.lower() != "https":
            reason = "plain http is only allowed to loopback"
        else:
            reason = f"the host is not in api_hosts {list(self.patterns)}"
        logger.warning(
            "Not sending the N3XT token to %s://%s: %s. The request goes out without it "
            "(this warning is logged once per host).",
            escape_controls(scheme, 20),
            escape_controls(host, 260),
            reason,
            extra=fields("token_withheld", result="not_allowed"),
        )

    def reset_after_fork(self) -> None:
        """Give the child process its own lock (the parent's may have been held at fork)."""
        self._warn_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"HostAllowlist({list(self.patterns)!r}, loopback={self.loopback})"


def _normal_ip(host: str) -> str | None:
    """``host`` as a canonical IP literal (``::1``, ``127.0.0.1``), or ``None`` for names."""
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


def _has_wildcard(pattern: str) -> bool:
    return any(c in pattern for c in _WILDCARDS)


def _checked_pattern(pattern: object) -> str:
    if not isinstance(pattern, str):
        raise ConfigError(
            f"api_hosts entries must be strings, got {type(pattern).__name__} ({pattern!r})",
            key="api_hosts",
        )
    cleaned = pattern.strip().lower().rstrip(".")
    ip = _normal_ip(cleaned)
    if ip is not None:
        return ip  # an IP literal, like "127.0.0.1" or "::1": matched exactly
    if not cleaned or not _PATTERN_CHARS.match(cleaned):
        raise ConfigError(
            f"api_hosts entry {pattern!r} is not a host name pattern: give host names only "
            "(like 'api.n3xt.io' or '*.n3xt.io'), without scheme, port or path",
            key="api_hosts",
        )
    if _has_wildcard(cleaned):
        problem = _wildcard_problem(cleaned)
        if problem is not None:
            raise ConfigError(f"api_hosts entry {pattern!r} {problem}", key="api_hosts")
    return cleaned


def _wildcard_problem(pattern: str) -> str | None:
    """Why a wildcard pattern would send the token outside N3XT, with the intended form."""
    last = list(_WILDCARD_CHARS.finditer(pattern))[-1]
    tail = pattern[last.end() :]
    domain = tail[1:] if tail.startswith(".") else tail
    if not domain or _is_public_suffix(domain):
        example = f"'*.example.{domain}' or '*.n3xt.io'" if domain else "'*.n3xt.io'"
        return (
            "matches too much: the token would go to hosts outside N3XT (anyone can register "
            f"a name under {domain or 'any domain'!r}). Name a domain you own after the "
            f"wildcard, like {example}"
        )
    if not tail.startswith("."):
        intended = "*." + domain.lstrip("-")
        return (
            f"matches too much: a wildcard not followed by a dot also matches other "
            f"domains ({pattern!r} matches 'evil{domain}'). A wildcard stands for whole "
            f"leftmost labels: write {intended!r}"
        )
    return None


@functools.lru_cache(maxsize=256)
def _is_public_suffix(domain: str) -> bool:
    """True when ``domain`` is a public suffix (``com``, ``co.uk``, ``github.io``):
    names under it belong to unrelated owners. Unknown top-level names count as public."""
    if domain in _KNOWN_PRIVATE_DOMAINS:
        return False
    if _normal_ip(domain) is not None:
        return False
    return bool(_public_suffix_list().is_public(domain))


@functools.lru_cache(maxsize=1)
def _public_suffix_list() -> Any:
    from publicsuffixlist import PublicSuffixList  # noqa: PLC0415 - ~40 ms: load on first custom wildcard

    return PublicSuffixList()
