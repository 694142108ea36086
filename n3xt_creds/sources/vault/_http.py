"""The HTTP side of VaultSource: a guarded hvac client.

hvac sends the Vault token in an ``X-Vault-Token`` header and lets ``requests``
follow redirects. ``requests`` strips only ``Authorization`` when a redirect
leaves the origin, so a standby node's ``307`` to another address would carry the
Vault token there. :func:`build_client` therefore installs an adapter that sends
every request itself: it follows same-origin redirects and refuses the others,
asks for an uncompressed answer and reads it in chunks up to
:data:`MAX_ANSWER_BYTES` (a bigger or compressed answer is refused while reading,
never held in memory whole), and turns every non-2xx answer into a
:class:`VaultHTTPError` that keeps the status, Vault's error strings (escaped) and
``Retry-After`` (read by the core's parser, HTTP-date included).

Every error leaves this module without a context chain: ``requests``' exceptions
hold the request, whose headers hold the Vault token.

hvac (and with it ``requests``) is imported only inside :func:`build_client`, so
``import n3xt_creds`` stays light.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urljoin, urlsplit

from ..._core.retry import parse_retry_after
from ..._text import escape_controls

__all__ = [
    "MAX_ANSWER_BYTES",
    "AnswerTooLargeError",
    "RedirectRefusedError",
    "TLSVaultError",
    "TransientVaultError",
    "VaultHTTPError",
    "build_client",
]

# A same-origin redirect chain longer than this is a loop or a misconfiguration.
_MAX_REDIRECTS = 3
# Vault's error strings are short; anything longer is not worth putting in a message.
_MAX_ERROR_TEXT = 200
#: A KV secret, a login or a renewal answer is a few KiB; Vault itself caps request
#: bodies at 32 MiB, but nothing we read needs more than this.
MAX_ANSWER_BYTES = 1024 * 1024
_CHUNK = 64 * 1024


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
        self.errors = [escape_controls(e, _MAX_ERROR_TEXT) for e in errors]
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


class AnswerTooLargeError(Exception):
    """Vault's answer was bigger than :data:`MAX_ANSWER_BYTES`, or compressed."""


class RedirectRefusedError(Exception):
    """Vault redirected to another origin; following would hand it the Vault token."""

    def __init__(self, location: str) -> None:
        self.location = escape_controls(location, 300)
        super().__init__(f"redirect to {self.location} refused")


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def build_client(
    *,
    url: str,
    namespace: str | None,
    verify: bool | str,
    cert: tuple[str, str] | None,
    timeout: float,
    session: Any = None,
) -> Any:
    """An ``hvac.Client`` whose adapter refuses cross-origin redirects, bounds answers
    and raises :class:`VaultHTTPError` / :class:`TransientVaultError` /
    :class:`TLSVaultError` / :class:`AnswerTooLargeError` instead of hvac's errors.

    Everything is passed explicitly so hvac never falls back to ``os.environ`` or
    ``~/.vault-token`` behind the source's back (``token=""`` disables that lookup).
    """
    import hvac  # noqa: PLC0415 - heavy import, only when a Vault source first reads
    import hvac.adapters  # noqa: PLC0415
    import requests  # noqa: PLC0415

    class GuardedAdapter(hvac.adapters.RawAdapter):  # type: ignore[misc]  # hvac is untyped
        """Sends each request itself: same-origin redirects only, bounded JSON bodies."""

        def request(
            self,
            method: str,
            url: str,
            headers: dict[str, str] | None = None,
            raise_exception: bool = True,
            **kwargs: Any,
        ) -> Any:
            while "//" in url:  # as hvac does: Vault treats // as /
                url = url.replace("//", "/")
            send_headers = {
                **(headers or {}),
                "X-Vault-Request": "true",
                # An uncompressed answer can be bounded while it is read; a gzip one
                # could inflate far past the cap from a few bytes.
                "Accept-Encoding": "identity",
            }
            if self.token:
                send_headers["X-Vault-Token"] = self.token
            if self.namespace:
                send_headers["X-Vault-Namespace"] = self.namespace
            wrap_ttl = kwargs.pop("wrap_ttl", None)
            if wrap_ttl:
                send_headers["X-Vault-Wrap-TTL"] = str(wrap_ttl)
            options = {**self._kwargs, **kwargs}
            failure: Exception | None = None
            try:
                return self._exchange(
                    method, self.urljoin(self.base_uri, url), send_headers, options
                )
            except requests.exceptions.SSLError:
                failure = TLSVaultError("TLS handshake failed")
            except requests.exceptions.RequestException as exc:
                failure = TransientVaultError(type(exc).__name__)
            assert failure is not None
            raise failure  # outside the except block: the request (and its token) stays behind

        def _exchange(
            self, method: str, url: str, headers: dict[str, str], options: dict[str, Any]
        ) -> Any:
            response = self.session.request(
                method=method,
                url=url,
                headers=headers,
                allow_redirects=False,
                stream=True,
                **options,
            )
            for _ in range(_MAX_REDIRECTS):
                if not response.is_redirect:
                    break
                location = urljoin(response.url, response.headers.get("Location", ""))
                response.close()
                if _origin(location) != _origin(self.base_uri):
                    raise RedirectRefusedError(location)
                # Same origin: the token may go there. Re-send the headers and body
                # (the query string is already in Location), still by hand.
                resend = {k: v for k, v in options.items() if k != "params"}
                response = self.session.request(
                    method=method,
                    url=location,
                    headers=headers,
                    allow_redirects=False,
                    stream=True,
                    **resend,
                )
            if response.is_redirect:
                response.close()
                raise RedirectRefusedError(response.headers.get("Location", ""))
            return _decode(response.status_code, response.headers, _read_bounded(response))

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


def _read_bounded(response: Any) -> bytes:
    """The body of ``response`` (streamed), refused past :data:`MAX_ANSWER_BYTES`."""
    try:
        encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise AnswerTooLargeError(
                f"Vault sent a {escape_controls(encoding, 40)}-encoded answer although an "
                "uncompressed one was asked for"
            )
        declared = response.headers.get("Content-Length", "")
        if declared.strip().isdigit() and int(declared) > MAX_ANSWER_BYTES:
            raise AnswerTooLargeError(f"Vault announced a {int(declared)}-byte answer")
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(_CHUNK):
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                raise AnswerTooLargeError("Vault's answer did not end within the cap")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        response.close()


def _decode(status: int, headers: Any, content: bytes) -> Any:
    """The JSON body of a 2xx answer (``{}`` for 204), or :class:`VaultHTTPError`."""
    body = _json(content)
    if 200 <= status < 300:
        return body if isinstance(body, dict) else {}
    errors: list[str] = []
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        errors = [str(e) for e in body["errors"] if str(e).strip()]
    raise VaultHTTPError(
        status, errors, body=body, retry_after=parse_retry_after(headers, now=time.time())
    )


def _json(content: bytes) -> Any:
    if not content:
        return {}
    try:
        return json.loads(content)
    except (ValueError, RecursionError):  # RecursionError: absurdly nested, within the cap
        return None
