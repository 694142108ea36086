"""The HTTP side of VaultSource: a guarded hvac client and bounded retries.

hvac sends the Vault token in an ``X-Vault-Token`` header and lets ``requests``
follow redirects. ``requests`` strips only ``Authorization`` when a redirect
leaves the origin, so a standby node's ``307`` to another address would carry the
Vault token there. :func:`build_client` therefore installs an adapter that never
lets ``requests`` follow a redirect: it follows same-origin redirects itself and
refuses the others. The adapter also turns every non-2xx answer into a
:class:`VaultHTTPError` that keeps the status, Vault's error strings and
``Retry-After``, which hvac's own exceptions drop.

hvac (and with it ``requests``) is imported only inside :func:`build_client`, so
``import n3xt_creds`` stays light.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

from ...errors import SourceError

__all__ = ["RetryPolicy", "TransientVaultError", "VaultHTTPError", "build_client", "with_retries"]

_T = TypeVar("_T")
_log = logging.getLogger("n3xt_creds")

# A same-origin redirect chain longer than this is a loop or a misconfiguration.
_MAX_REDIRECTS = 3
# Vault's error strings are short; anything longer is not worth putting in a message.
_MAX_ERROR_TEXT = 200


class VaultHTTPError(Exception):
    """Vault answered with a non-2xx status. Carries no token: only Vault's own words."""

    def __init__(
        self,
        status_code: int,
        errors: list[str],
        *,
        body: Any = None,
        retry_after: float | None = None,
    ) -> None:
        self.status_code = status_code
        self.errors = errors
        self.body = body
        self.retry_after = retry_after
        super().__init__(f"HTTP {status_code}: {self.reason}")

    @property
    def reason(self) -> str:
        """Vault's error strings joined, shortened; ``"no details"`` when it gave none."""
        text = "; ".join(self.errors) or "no details"
        return text if len(text) <= _MAX_ERROR_TEXT else text[:_MAX_ERROR_TEXT] + "..."

    @property
    def transient(self) -> bool:
        """Worth retrying: Vault sealed or overloaded, a proxy error, or throttling."""
        return self.status_code == 429 or self.status_code >= 500

    @property
    def sealed(self) -> bool:
        """The 503 a sealed Vault answers with."""
        return self.status_code == 503 and any("sealed" in e.lower() for e in self.errors)


class TransientVaultError(Exception):
    """No usable answer from Vault (connection refused, timeout, reset): worth retrying."""


class TLSVaultError(Exception):
    """The TLS handshake failed: a CA bundle or client-certificate problem, not an outage."""


class RedirectRefusedError(Exception):
    """Vault redirected to another origin; following would hand it the Vault token."""

    def __init__(self, location: str) -> None:
        self.location = location
        super().__init__(f"redirect to {location} refused")


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date: rare from Vault; fall back to our own backoff
    return max(0.0, seconds)


def build_client(
    *,
    url: str,
    namespace: str | None,
    verify: bool | str,
    cert: tuple[str, str] | None,
    timeout: float,
    session: Any = None,
) -> Any:
    """An ``hvac.Client`` whose adapter refuses cross-origin redirects and raises
    :class:`VaultHTTPError` / :class:`TransientVaultError` instead of hvac's errors.

    Everything is passed explicitly so hvac never falls back to ``os.environ`` or
    ``~/.vault-token`` behind the source's back (``token=""`` disables that lookup).
    """
    import hvac  # noqa: PLC0415 - heavy import, only when a Vault source first reads
    import hvac.adapters  # noqa: PLC0415
    import requests  # noqa: PLC0415

    class GuardedAdapter(hvac.adapters.RawAdapter):  # type: ignore[misc]  # hvac is untyped
        """Raw adapter: same-origin redirects only, JSON bodies, our own errors."""

        def request(
            self,
            method: str,
            url: str,
            headers: dict[str, str] | None = None,
            raise_exception: bool = True,
            **kwargs: Any,
        ) -> Any:
            self.allow_redirects = False
            try:
                response = super().request(
                    method, url, headers=headers, raise_exception=False, **kwargs
                )
                for _ in range(_MAX_REDIRECTS):
                    if not response.is_redirect:
                        break
                    location = urljoin(response.url, response.headers.get("Location", ""))
                    if _origin(location) != _origin(self.base_uri):
                        raise RedirectRefusedError(location)
                    # Same origin: the token may go there. Re-send the Vault headers and
                    # body (the query string is already in Location), still by hand.
                    vault_headers = {
                        k: v
                        for k, v in response.request.headers.items()
                        if k.lower().startswith("x-vault-")
                    }
                    resend = {k: v for k, v in kwargs.items() if k != "params"}
                    response = self.session.request(
                        method=method,
                        url=location,
                        headers=vault_headers,
                        allow_redirects=False,
                        **{**self._kwargs, **resend},
                    )
            except requests.exceptions.SSLError as exc:
                raise TLSVaultError(str(exc)) from None
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
                raise TransientVaultError(type(exc).__name__) from None
            if response.is_redirect:
                raise RedirectRefusedError(response.headers.get("Location", ""))
            return _decode(response)

        def get_login_token(self, response: Any) -> str:
            return str(response["auth"]["client_token"])

    return hvac.Client(
        url=url,
        token="",
        cert=cert or False,
        verify=verify,
        timeout=timeout,
        session=session,
        adapter=GuardedAdapter,
        namespace=namespace,
    )


def _decode(response: Any) -> Any:
    """The JSON body of a 2xx answer (``{}`` for 204), or :class:`VaultHTTPError`."""
    body: Any = None
    try:
        body = response.json() if response.content else {}
    except ValueError:
        body = None
    if 200 <= response.status_code < 300:
        return body if isinstance(body, dict) else {}
    errors: list[str] = []
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        errors = [str(e) for e in body["errors"] if str(e).strip()]
    raise VaultHTTPError(
        response.status_code,
        errors,
        body=body,
        retry_after=_parse_retry_after(response.headers.get("Retry-After")),
    )


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try before telling the caller Vault is unavailable.

    ``retries`` more attempts after the first; exponential backoff from ``backoff``
    seconds with full jitter, capped at ``max_backoff``. A ``Retry-After`` up to
    ``max_retry_after`` seconds is honoured (waiting at least the un-jittered backoff,
    as Vault rounds it down to whole seconds); a longer one ends the attempts at once
    (the authenticator keeps using its last good credentials).
    """

    retries: int = 3
    backoff: float = 0.2
    max_backoff: float = 2.0
    max_retry_after: float = 10.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Full-jitter exponential backoff before retry number ``attempt`` (1-based)."""
        return rng.uniform(0, min(self.max_backoff, self.backoff * 2 ** (attempt - 1)))


def with_retries(
    operation: Callable[[], _T],
    *,
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
    give_up: Callable[[BaseException, int], SourceError],
) -> _T:
    """Run ``operation``, retrying transient failures within ``policy``.

    Transient means :class:`TransientVaultError` or a :class:`VaultHTTPError` with a
    429/5xx status; anything else propagates at once. When the attempts are used up
    (or a ``Retry-After`` is longer than the policy allows), ``give_up(error,
    attempts)`` builds the :class:`~n3xt_creds.SourceError` that is raised.
    """
    rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
    attempt = 0
    while True:
        attempt += 1
        try:
            return operation()
        except (TransientVaultError, VaultHTTPError) as exc:
            if isinstance(exc, VaultHTTPError) and not exc.transient:
                raise
            if attempt > policy.retries:
                raise give_up(exc, attempt) from None
            retry_after = exc.retry_after if isinstance(exc, VaultHTTPError) else None
            _log.warning("vault: attempt %d failed (%s); retrying", attempt, exc)
            if retry_after is not None and retry_after > policy.max_retry_after:
                raise give_up(exc, attempt) from None
            if retry_after is None:
                sleep(policy.delay(attempt, rng))
            else:
                # Vault's Retry-After has 1 s resolution and says 0 when the window
                # reopens within the second: never wait less than the plain backoff.
                sleep(max(retry_after, policy.backoff * 2 ** (attempt - 1)))
