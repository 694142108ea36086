"""The emulator's state: clients, issued tokens, queued faults and counters, behind one lock.

Everything here is plain data and logic with no I/O, so the HTTP handler threads and the
test thread calling the controls can share it safely: every method takes the lock.
"""

from __future__ import annotations

import collections
import hmac
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .._secret import Secret
from ..credentials import Credentials
from ._faults import Fault

__all__ = ["ApiOutcome", "Counters", "EmulatorState", "TokenRecord"]


@dataclass(frozen=True)
class Counters:
    """A snapshot of what the emulator has seen since start or the last ``reset()``.

    ``token_requests`` maps an outcome to a count. Outcomes: ``"success"``,
    ``"invalid_client"``, ``"invalid_request"``, ``"unsupported_grant_type"``,
    ``"unsupported_media_type"``, ``"method_not_allowed"``, and for an injected fault its
    :class:`Fault` value (``"server_error"``, ``"hang"``, ...), and ``"dropped"`` if the
    handler failed before deciding an answer (a bug: please report it). ``api_calls`` maps an
    outcome of the protected API to a count: ``"ok"``, ``"missing_token"``,
    ``"invalid_token"`` (unknown), ``"expired_token"``, ``"revoked_token"``.
    ``max_in_flight`` is the most token requests being handled at the same moment;
    ``in_flight`` is how many are being handled now. Requests that began before the last
    ``reset()`` are not counted at all, so a hang left over from one test never shows in
    the next one's counters.
    """

    token_requests: Mapping[str, int] = field(default_factory=dict)
    max_in_flight: int = 0
    in_flight: int = 0
    api_calls: Mapping[str, int] = field(default_factory=dict)

    @property
    def token_requests_total(self) -> int:
        """Every token request answered (or dropped on purpose), whatever the outcome."""
        return sum(self.token_requests.values())

    @property
    def api_calls_total(self) -> int:
        """Every call to the protected API, whatever the outcome."""
        return sum(self.api_calls.values())


@dataclass
class TokenRecord:
    """One issued access token's bookkeeping (the token itself is the dict key)."""

    client_id: str
    issued_at: float
    expires_at: float
    revoked: bool = False


@dataclass(frozen=True)
class ApiOutcome:
    """The verdict on a bearer token presented to the protected API."""

    outcome: str
    client_id: str | None = None

    @property
    def ok(self) -> bool:
        """True when the token is valid, unexpired and unrevoked."""
        return self.outcome == "ok"


class EmulatorState:
    """Clients, tokens, faults and counters of one emulator, safe to share between threads."""

    def __init__(self, *, expires_in: int, latency: float, clock: Callable[[], float]) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._default_expires_in = _check_expires_in(expires_in)
        self._default_latency = _check_latency(latency)
        self._resumed = threading.Event()
        self._clear()

    def _clear(self) -> None:
        # Called with the lock held (or before the object is shared).
        self._clients: dict[str, Secret] = {}
        self._tokens: dict[str, TokenRecord] = {}
        self._faults: collections.deque[tuple[Fault, int]] = collections.deque()
        self._token_requests: collections.Counter[str] = collections.Counter()
        self._api_calls: collections.Counter[str] = collections.Counter()
        # Requests still running from before a reset (a HANG outliving its test) belong
        # to an old generation and no longer touch the counters.
        self._generation = getattr(self, "_generation", 0) + 1
        self._in_flight = 0
        self._max_in_flight = 0
        self.expires_in = self._default_expires_in
        self.latency = self._default_latency
        self.trickle_interval = 0.0
        self._resumed.set()

    # --- settings -------------------------------------------------------------------

    @property
    def expires_in(self) -> int:
        """``expires_in`` (seconds) of tokens issued from now on."""
        return self._expires_in

    @expires_in.setter
    def expires_in(self, value: int) -> None:
        self._expires_in = _check_expires_in(value)

    @property
    def latency(self) -> float:
        """Seconds the emulator waits before answering each token request."""
        return self._latency

    @latency.setter
    def latency(self, value: float) -> None:
        self._latency = _check_latency(value)

    @property
    def trickle_interval(self) -> float:
        """Seconds between the bytes of a token answer; 0 sends answers whole."""
        return self._trickle_interval

    @trickle_interval.setter
    def trickle_interval(self, value: float) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 60:
            raise ValueError(f"trickle_interval must be between 0 and 60 seconds, got {value!r}")
        self._trickle_interval = float(value)

    @property
    def resumed(self) -> threading.Event:
        """Set unless token answers are paused; handlers wait on it."""
        return self._resumed

    # --- clients --------------------------------------------------------------------

    def add_client(self, client_id: str | None, client_secret: str | Secret | None) -> Credentials:
        """Register a client pair (generated when not given) and return it."""
        client_id = client_id if client_id is not None else f"client-{secrets.token_hex(8)}"
        secret = _as_secret(client_secret)
        if not client_id:
            raise ValueError("client_id must be a non-empty string")
        if not secret:
            raise ValueError(f"client_secret for {client_id!r} must be a non-empty string")
        with self._lock:
            if client_id in self._clients:
                raise ValueError(
                    f"the emulator already has a client {client_id!r}; "
                    "use rotate_client() to change its secret"
                )
            self._clients[client_id] = secret
        return Credentials(client_id, secret, source="emulator")

    def rotate_client(self, client_id: str, new_secret: str | Secret | None) -> Credentials:
        """Give ``client_id`` a new secret; the old one is rejected from now on."""
        secret = _as_secret(new_secret)
        if not secret:
            raise ValueError(f"new_secret for {client_id!r} must be a non-empty string")
        with self._lock:
            self._require_client(client_id)
            self._clients[client_id] = secret
        return Credentials(client_id, secret, source="emulator")

    def remove_client(self, client_id: str) -> None:
        """Forget ``client_id`` and revoke every token issued to it."""
        with self._lock:
            self._require_client(client_id)
            del self._clients[client_id]
            for record in self._tokens.values():
                if record.client_id == client_id:
                    record.revoked = True

    def client_ids(self) -> list[str]:
        """The registered client ids (never their secrets)."""
        with self._lock:
            return list(self._clients)

    def _require_client(self, client_id: str) -> None:
        if client_id not in self._clients:
            known = ", ".join(repr(c) for c in self._clients) or "none"
            raise LookupError(f"the emulator has no client {client_id!r} (registered: {known})")

    def authenticate(self, client_id: str, client_secret: str) -> bool:
        """True when the pair matches a registered client (constant-time comparison)."""
        with self._lock:
            expected = self._clients.get(client_id)
        if expected is None:
            # Compare anyway so an unknown id costs about as long as a wrong secret.
            hmac.compare_digest(client_secret.encode(), b"x" * len(client_secret))
            return False
        return hmac.compare_digest(
            client_secret.encode("utf-8"), expected.get_secret_value().encode("utf-8")
        )

    # --- tokens ---------------------------------------------------------------------

    def issue_token(self, client_id: str) -> tuple[str, int]:
        """Mint a new opaque access token for ``client_id``; return it and its ``expires_in``."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            now = self._clock()
            expires_in = self._expires_in
            self._tokens[token] = TokenRecord(client_id, now, now + expires_in)
        return token, expires_in

    def check_token(self, token: str | None) -> ApiOutcome:
        """Judge a bearer token presented to the protected API."""
        if not token:
            return ApiOutcome("missing_token")
        with self._lock:
            record = self._tokens.get(token)
            if record is None:
                return ApiOutcome("invalid_token")
            if record.revoked:
                return ApiOutcome("revoked_token", record.client_id)
            if self._clock() >= record.expires_at:
                return ApiOutcome("expired_token", record.client_id)
            return ApiOutcome("ok", record.client_id)

    def revoke_tokens(self, client_id: str | None) -> int:
        """Revoke every live token (of ``client_id`` when given); return how many."""
        with self._lock:
            count = 0
            for record in self._tokens.values():
                if not record.revoked and client_id in (None, record.client_id):
                    record.revoked = True
                    count += 1
            return count

    def revoke_token(self, token: str) -> bool:
        """Revoke one token; False when it is unknown or already revoked."""
        with self._lock:
            record = self._tokens.get(token)
            if record is None or record.revoked:
                return False
            record.revoked = True
            return True

    def expire_tokens(self) -> int:
        """Make every issued, not yet expired token expired now; return how many."""
        with self._lock:
            now = self._clock()
            count = 0
            for record in self._tokens.values():
                if record.expires_at > now:
                    record.expires_at = now
                    count += 1
            return count

    def token_count(self) -> int:
        """How many tokens have been issued since start or reset."""
        with self._lock:
            return len(self._tokens)

    # --- faults ---------------------------------------------------------------------

    def inject_fault(self, fault: Fault, count: int, retry_after: int) -> None:
        """Queue ``count`` copies of ``fault`` for the next token requests."""
        fault = Fault(fault)
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count!r}")
        if retry_after < 0:
            raise ValueError(f"retry_after must be >= 0 seconds, got {retry_after!r}")
        with self._lock:
            self._faults.extend([(fault, retry_after)] * count)

    def next_fault(self) -> tuple[Fault, int] | None:
        """Pop the next queued fault (and its Retry-After), if any."""
        with self._lock:
            return self._faults.popleft() if self._faults else None

    def pending_faults(self) -> list[Fault]:
        """The queued faults, next first."""
        with self._lock:
            return [fault for fault, _ in self._faults]

    # --- counters -------------------------------------------------------------------

    def begin_token_request(self) -> int:
        """Count a token request as in flight; return the generation to hand back later."""
        with self._lock:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            return self._generation

    def count_token_outcome(self, outcome: str, generation: int) -> None:
        """Count a token request's outcome (ignored if ``reset()`` ran since it began)."""
        with self._lock:
            if generation == self._generation:
                self._token_requests[outcome] += 1

    def leave_in_flight(self, generation: int) -> None:
        """A token request is done (ignored if ``reset()`` ran since it began)."""
        with self._lock:
            if generation == self._generation:
                self._in_flight -= 1

    def record_api_call(self, outcome: str) -> None:
        """Count one call to the protected API."""
        with self._lock:
            self._api_calls[outcome] += 1

    def counters(self) -> Counters:
        """A consistent snapshot of every counter."""
        with self._lock:
            return Counters(
                token_requests=MappingProxyType(dict(self._token_requests)),
                max_in_flight=self._max_in_flight,
                in_flight=self._in_flight,
                api_calls=MappingProxyType(dict(self._api_calls)),
            )

    def reset(self) -> None:
        """Back to the state right after construction; requests still running are not counted."""
        with self._lock:
            self._clear()


def _as_secret(value: str | Secret | None) -> Secret:
    if value is None:
        return Secret(secrets.token_urlsafe(32))
    return value if isinstance(value, Secret) else Secret(value)


def _check_expires_in(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expires_in must be a whole number of seconds >= 0, got {value!r}")
    return value


def _check_latency(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 3600:
        raise ValueError(f"latency must be between 0 and 3600 seconds, got {value!r}")
    return float(value)
