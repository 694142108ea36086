"""OpenTelemetry for one authenticator: what the rest of the core calls (issue 14).

n3xt_creds depends on ``opentelemetry-api`` only (extra ``otel``), as OpenTelemetry asks
of libraries: the application installs and configures the SDK and its exporters. Without
the API installed, or without an SDK configured, everything here is a no-op.

This module is the cheap front: ``import n3xt_creds`` loads it, and it imports nothing of
OpenTelemetry. :meth:`Telemetry.load` imports :mod:`.otel` (the instruments and spans,
and opentelemetry-api with them, ~25 ms) on the first refresh; async callers run it in a
worker thread first, so the event loop never blocks on the import. The hot path, a
fresh cached token, never comes here. What is recorded: :mod:`.otel`,
docs/observability.md.

Other modules report what only they see through a few calls: :meth:`Telemetry.observe`
(the refresh flow), :meth:`Telemetry.trigger` (why a refresh starts),
:meth:`Telemetry.cache_lookup` (process level) and :meth:`Telemetry.shared_lookup`, and
:meth:`Telemetry.on_event`, fed every :class:`~n3xt_creds.AuthEvent` by the
StatsRecorder: a new event kind becomes a metric by one branch there.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from .logfields import fields

if TYPE_CHECKING:
    from ..credentials import Credentials
    from .flow import RefreshFlow, RefreshResult
    from .otel import Instruments, ObservedRefresh
    from .stats import AuthEvent

__all__ = ["CacheLevel", "Telemetry", "Trigger", "source_kind"]

logger = logging.getLogger("n3xt_creds")

Trigger = Literal["cold", "expired", "stale", "api_401", "invalidate", "rotation"]
CacheLevel = Literal["process", "shared"]

_SOURCE_KINDS = {
    "EnvSource": "env",
    "FileSource": "file",
    "VaultSource": "vault",
    "AwsSecretsManagerSource": "aws",
    "ChainSource": "chain",
}


def source_kind(source: object) -> str:
    """A low-cardinality name for ``source``: ``env``, ``file``, ``vault``, ``aws``,
    ``chain``, or the class name of any other (plugin) source."""
    name = type(source).__name__
    return _SOURCE_KINDS.get(name, name)


def _no_token() -> float | None:
    return None


class Telemetry:
    """The OpenTelemetry side of one authenticator (loaded on its first refresh).

    ``meter_provider``/``tracer_provider`` default to the global ones (the API's proxies
    until the application configures an SDK, so an SDK set up later still gets
    everything). ``record_client_id`` adds ``n3xt_creds.client_id`` to the token
    metrics (off by default: with many clients it multiplies the series, and some
    deployments treat the client_id as confidential).
    """

    def __init__(
        self,
        *,
        token_url: str,
        source: object,
        clock: Callable[[], float],
        meter_provider: Any = None,
        tracer_provider: Any = None,
        record_client_id: bool = False,
    ) -> None:
        parts = urllib.parse.urlsplit(token_url)
        self.server_address = parts.hostname or ""
        self.server_port = parts.port or (443 if parts.scheme == "https" else 80)
        # No user:password@, no query, no fragment: what the HTTP conventions allow.
        host = f"[{self.server_address}]" if ":" in self.server_address else self.server_address
        netloc = host if parts.port is None else f"{host}:{parts.port}"
        self.url_full = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))
        self.source = source_kind(source)
        self._clock = clock
        self._expires_at: Callable[[], float | None] = _no_token
        self._shared_failures: Callable[[], Mapping[str, int]] = dict
        self._meter_provider = meter_provider
        self._tracer_provider = tracer_provider
        self._record_client_id = record_client_id
        self._client_id: str | None = None  # the last pair's, only when record_client_id
        self._otel: Instruments | None = None
        self._observed: type[ObservedRefresh] | None = None  # .otel's, once loaded
        self._loaded = False
        # Why the token was dropped (api_401 / invalidate): the next refresh's trigger.
        self._dropped_because: Trigger | None = None
        self._warned: set[str] = set()  # kinds of recording failure already logged

    # -- loading ------------------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        """Whether :meth:`load` ran (async callers run it in a worker thread first)."""
        return self._loaded

    def load(self) -> None:
        """Import opentelemetry-api and create the instruments (once; a no-op without it).

        Telemetry never fails authentication: when the import or the instruments fail
        for a passing reason (EMFILE during the import, a broken provider), this refresh
        is not recorded and the next one tries again.
        """
        if self._loaded:
            return
        try:
            from . import otel  # noqa: PLC0415 - imports opentelemetry: the first refresh only
        except ImportError:
            self._loaded = True  # opentelemetry-api is not installed: a no-op for good
            return
        except Exception as exc:
            self._setup_failed(exc)
            return
        try:
            instruments = otel.instruments_for(self._meter_provider, self._tracer_provider)
        except Exception as exc:
            self._setup_failed(exc)
            return
        self._otel, self._observed = instruments, otel.ObservedRefresh
        instruments.watched.add(self)
        self._loaded = True

    def _setup_failed(self, exc: Exception) -> None:
        logger.warning(
            "n3xt_creds could not set up OpenTelemetry (%s: %s); this refresh is not recorded",
            type(exc).__name__,
            exc,
            extra=fields("telemetry_setup_failed"),
        )

    def close(self) -> None:
        """The authenticator closed: its token leaves the expiry gauge."""
        if self._otel is not None:
            self._otel.watched.discard(self)

    def _get(self) -> Instruments | None:
        if not self._loaded:
            self.load()
        return self._otel

    # -- attributes -----------------------------------------------------------------------

    def token_attributes(self) -> dict[str, str]:
        """Attributes of every token metric: the N3XT host (and client_id if opted in)."""
        attributes = {"server.address": self.server_address}
        if self._client_id is not None:
            attributes["n3xt_creds.client_id"] = self._client_id
        return attributes

    def watch_expiry(self, expires_at: Callable[[], float | None]) -> None:
        """Feed the ``n3xt_creds.token.expires_in`` gauge: ``expires_at`` returns the
        cached token's expiry on ``clock``, or ``None`` without one."""
        self._expires_at = expires_at

    def watch_shared_failures(self, failures: Callable[[], Mapping[str, int]]) -> None:
        """Feed ``n3xt_creds.cache.failures``: ``failures`` returns the shared cache's
        failure counts by condition (monotonic, as an observable counter needs)."""
        self._shared_failures = failures

    def shared_failures(self) -> Mapping[str, int]:
        """The shared cache's failure counts by condition (empty without one)."""
        return self._shared_failures()

    def seconds_to_expiry(self) -> float | None:
        """Seconds the cached token has left (0 once expired), ``None`` without one."""
        expires_at = self._expires_at()
        if expires_at is None:
            return None
        return max(0.0, expires_at - self._clock())

    # -- what other modules report ----------------------------------------------------------

    def trigger(self, *, background: bool, has_token: bool, check: bool = False) -> Trigger:
        """Why the refresh about to start is needed.

        ``rotation`` for a cool-down check (a refresh only if the source now serves
        new credentials); ``stale`` for a background refresh; ``api_401``/``invalidate``
        when the token was dropped for that reason (until a new one is stored);
        ``expired`` when a token is cached but past use; ``cold`` when there is none.
        """
        if check:
            return "rotation"
        if background:
            return "stale"
        if self._dropped_because is not None and not has_token:
            return self._dropped_because
        return "expired" if has_token else "cold"

    def on_event(self, event: AuthEvent) -> None:
        """Every :class:`~n3xt_creds.AuthEvent` recorded by the authenticator comes here."""
        kind: str = event.kind
        if kind == "token_invalidated" and event.reason in ("api_401", "invalidate"):
            self._dropped_because = event.reason  # type: ignore[assignment]
        elif kind == "request_replayed":
            self.api_unauthorized(replayed=True)
        elif kind == "api_401_passed_through":
            self.api_unauthorized(replayed=False)
        elif kind == "remembered_failure_served":
            self._count("remembered_failures", {"error.type": event.error or "unknown"})
        elif kind == "cooldown_started":
            self._count("cooldowns", {"error.type": event.error or "unknown"})
        elif kind == "token_expired_on_arrival":
            self._count("expired_on_arrival", self.token_attributes())

    def recording_failed(self, exc: Exception) -> None:
        """Recording raised (a span processor or an exporter run inline, a view): the
        refresh goes on without it; one warning per kind of failure and authenticator."""
        kind = type(exc).__qualname__
        if kind in self._warned:
            return
        self._warned.add(kind)
        logger.warning(
            "OpenTelemetry recording failed (%s: %s); n3xt_creds goes on without recording "
            "this step (logged once per kind of failure)",
            kind,
            exc,
            extra=fields("telemetry_recording_failed"),
        )

    def _count(self, instrument: str, attributes: dict[str, str]) -> None:
        otel = self._get()
        if otel is not None:
            try:
                getattr(otel, instrument).add(1, attributes)
            except Exception as exc:
                self.recording_failed(exc)

    def shared_lookup(self, hit: bool) -> None:
        """A refresh consulted the shared cache (L2): its token came from there, or not."""
        self.cache_lookup("shared", hit=hit)

    def cache_lookup(self, level: CacheLevel, *, hit: bool) -> None:
        """A slow-path cache lookup: ``process`` (the in-process cell) or ``shared`` (L2)."""
        self._count("cache_lookups", {"level": level, "result": "hit" if hit else "miss"})

    def api_unauthorized(self, *, replayed: bool) -> None:
        """The API answered 401 to our token: the request was replayed, or the 401 passed."""
        self._count("api_unauthorized", {"action": "replayed" if replayed else "passed_through"})

    # -- the refresh ----------------------------------------------------------------------

    def observe(self, flow: RefreshFlow, *, trigger: Trigger) -> RefreshFlow:
        """``flow``, observed: same actions, same results, plus spans and metrics.

        Without opentelemetry-api installed, ``flow`` itself.
        """
        otel = self._get()
        if otel is None or self._observed is None:
            return flow
        return self._observed(self, otel, trigger, lazy=trigger == "rotation").run(flow)

    def refresh_ended(self, result: RefreshResult) -> None:
        self._dropped_because = None
        if self._record_client_id:
            self._client_id = result.credentials.client_id

    def credentials_read(self, credentials: Credentials) -> None:
        if self._record_client_id:
            self._client_id = credentials.client_id
