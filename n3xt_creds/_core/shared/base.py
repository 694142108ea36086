"""The shared token cache contract and its entries: the protocol, the keys and the encryption.

A :class:`TokenCache` is a dumb store of opaque bytes with a refresh lease; it
knows nothing of tokens. Everything that gives the bytes meaning lives here, once
for every backend:

* **the key** names an entry by a hash of (token_url, client_id, secret
  fingerprint): processes with the same client share it, a rotated secret gets a
  new key, and the key reveals neither the client_id nor the secret;
* **the value** is the token and its absolute expiry (wall-clock time of the host
  that got it, plus the lifetime), sealed with AES-256-GCM under a key derived
  from the client secret with HKDF-SHA256, the entry key as associated data. A
  reader of the store without the secret learns nothing and cannot plant a token
  (nor move an entry under another key); a store TTL is only an upper bound on top.

``cryptography`` is imported on first use of a shared cache, never by ``import n3xt_creds``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

from ..._secret import Secret
from ...credentials import Credentials
from ..token import Token

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "MAX_ENTRY_BYTES",
    "EntryKey",
    "EntryProblem",
    "Lookup",
    "SealedEntry",
    "StoreError",
    "TokenCache",
    "entry_key",
    "open_entry",
    "seal_entry",
]

#: A sealed entry is ~200 bytes; anything larger under our key is not ours and is ignored.
MAX_ENTRY_BYTES = 16 * 1024

_VERSION = b"N3C1"
_NONCE_BYTES = 12
_LABEL = b"n3xt-creds shared token v1"


class StoreError(Exception):
    """A shared store failed (down, slow, full, not ours). The caller falls back; never raised to users."""

    def __init__(self, condition: str, detail: str) -> None:
        super().__init__(f"{condition}: {detail}")
        #: A short, stable name of what went wrong: one warning per condition.
        self.condition = condition
        self.detail = detail


class EntryProblem(Exception):
    """An entry that cannot be used: garbage, foreign (another key or secret), or expired."""

    def __init__(self, condition: str) -> None:
        super().__init__(condition)
        self.condition = condition


class Lookup(NamedTuple):
    """What one :meth:`TokenCache.lookup` found: the entry bytes (or ``None``), and
    whether this caller now holds the refresh lease."""

    entry: bytes | None
    leased: bool


@runtime_checkable
class TokenCache(Protocol):
    """A store shared by processes: opaque entries plus a refresh lease per key.

    Implementations: :class:`~n3xt_creds.FileTokenCache` (one host) and
    :class:`~n3xt_creds.RedisTokenCache` (a fleet). Every method may raise
    :class:`StoreError`; the authenticator then falls back to refreshing on its own.
    ``key`` is an :class:`EntryKey`'s ``name`` (hex, safe in file and key names).
    """

    #: ``"file"`` or ``"redis"``: named in warnings, counters and ``n3xt-creds check``.
    backend: str

    def lookup(self, key: str, *, owner: str, lease_seconds: float, unless: bytes | None) -> Lookup:
        """In one step (one round trip): return the entry, unless it is absent or is
        exactly ``unless`` (an entry the caller found unusable); in that case also try
        to take the refresh lease for ``owner`` for ``lease_seconds``."""
        ...

    def publish(self, key: str, entry: bytes, *, ttl_seconds: float, owner: str | None) -> None:
        """Store ``entry`` (kept at most ``ttl_seconds``) and release ``owner``'s lease."""
        ...

    def release(self, key: str, owner: str) -> None:
        """Release the lease if ``owner`` still holds it (compare-and-delete)."""
        ...

    def drop(self, key: str, entry: bytes) -> bool:
        """Delete the entry only if it is still exactly ``entry`` (compare-and-delete)."""
        ...

    def describe(self) -> str:
        """Where the store is, without any password: for logs and ``n3xt-creds check``."""
        ...


class EntryKey:
    """The name of a client's entry and the AES-GCM key that seals it.

    Built from credentials; holds derived key material only (never the secret), and
    shows only its public name in ``repr``.
    """

    __slots__ = ("_aead", "name")

    def __init__(self, name: str, aead: AESGCM) -> None:
        self.name = name
        self._aead = aead

    def seal(self, plaintext: bytes) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, self.name.encode())

    def open(self, entry: bytes) -> bytes:
        from cryptography.exceptions import InvalidTag  # noqa: PLC0415 - heavy, loaded on use

        if not isinstance(entry, bytes) or len(entry) > MAX_ENTRY_BYTES:
            raise EntryProblem("entry_garbage")
        if not entry.startswith(_VERSION) or len(entry) < len(_VERSION) + _NONCE_BYTES + 16:
            raise EntryProblem("entry_garbage")
        nonce = entry[len(_VERSION) : len(_VERSION) + _NONCE_BYTES]
        try:
            return self._aead.decrypt(
                nonce, entry[len(_VERSION) + _NONCE_BYTES :], self.name.encode()
            )
        except InvalidTag:
            # Written under another secret, moved from another key, or tampered with.
            raise EntryProblem("entry_foreign") from None

    def __repr__(self) -> str:
        return f"EntryKey({self.name!r})"

    def __reduce__(self) -> Any:
        raise TypeError("EntryKey holds key material and refuses to be pickled")


def entry_key(token_url: str, credentials: Credentials) -> EntryKey:
    """The entry name and sealing key for this client at this token endpoint."""
    from cryptography.hazmat.primitives import hashes  # noqa: PLC0415 - heavy, loaded on use
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: PLC0415
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF  # noqa: PLC0415

    secret = credentials.client_secret.get_secret_value().encode("utf-8")
    context = token_url.encode("utf-8") + b"\0" + credentials.client_id.encode("utf-8")
    fingerprint = hashlib.sha256(secret).digest()
    name = hashlib.sha256(_LABEL + b"\0" + context + b"\0" + fingerprint).hexdigest()[:40]
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=_LABEL, info=context).derive(secret)
    return EntryKey(name, AESGCM(key))


class SealedEntry(NamedTuple):
    """A token read back from an entry, with its lifetime on the reader's clocks."""

    token: Token
    entry: bytes


def seal_entry(key: EntryKey, token: Token, *, now: float, wall_now: float) -> bytes:
    """Seal ``token`` (obtained at monotonic ``token.obtained_at``) with its absolute
    wall-clock start, so any process can place it on its own clock."""
    obtained_wall = wall_now - (now - token.obtained_at)
    plaintext = json.dumps(
        {
            "access_token": token.value(),
            "expires_in": token.expires_in,
            "obtained_at": obtained_wall,
            "request_id": token.request_id,
        },
        separators=(",", ":"),
    ).encode("utf-8")
    return key.seal(plaintext)


def open_entry(
    key: EntryKey,
    entry: bytes,
    *,
    now: float,
    wall_now: float,
    refresh_margin: float,
    stale_jitter: float = 0.0,
) -> SealedEntry:
    """The token inside ``entry``, placed on the monotonic clock (``now``); raises
    :class:`EntryProblem` for garbage, a foreign entry, or a token already expired.

    The expiry inside the entry rules, not the store's TTL. A writer whose clock ran
    ahead of ours (``obtained_at`` in our future) counts as having got it just now.
    """
    plaintext = key.open(entry)
    try:
        fields = json.loads(plaintext)
        access_token = fields["access_token"]
        expires_in = float(fields["expires_in"])
        obtained_wall = float(fields["obtained_at"])
        request_id = fields.get("request_id")
    except (ValueError, KeyError, TypeError):
        raise EntryProblem("entry_garbage") from None
    if (
        not isinstance(access_token, str)
        or not access_token
        or not (math.isfinite(expires_in) and expires_in > 0)
        or not math.isfinite(obtained_wall)
        or not (request_id is None or isinstance(request_id, str))
    ):
        raise EntryProblem("entry_garbage")
    age = max(0.0, wall_now - obtained_wall)
    if age >= expires_in:
        raise EntryProblem("entry_expired")
    token = Token(
        Secret(access_token),
        expires_in=expires_in,
        obtained_at=now - age,
        refresh_margin=refresh_margin,
        request_id=request_id,
        stale_jitter=stale_jitter,
    )
    return SealedEntry(token, entry)
