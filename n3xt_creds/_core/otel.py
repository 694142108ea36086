"""The OpenTelemetry side of :mod:`.telemetry`: instruments, spans, the observed refresh.

Imported by :meth:`Telemetry.load <n3xt_creds._core.telemetry.Telemetry.load>` on the
first refresh, never by ``import n3xt_creds``: importing this module imports
``opentelemetry-api`` (~25 ms), and an ``ImportError`` here means it is not installed.

What is recorded (low-cardinality attributes; never a token, a secret, a fingerprint of
either, a URL query or, unless ``record_client_id`` is set, the client_id):

* ``n3xt_creds.token.requests`` {result: success | invalid_client | rejected | transient,
  error.type on failures, server.address}
* ``n3xt_creds.token.request.duration`` (s, histogram) {result, server.address}
* ``n3xt_creds.token.refreshes`` {trigger: cold | expired | stale | api_401 | invalidate |
  rotation, result: success | failure, error.type on failures}
* ``n3xt_creds.token.refresh.duration`` (s, histogram) {trigger, result}
* ``n3xt_creds.token.expires_in`` (s, observable gauge) {server.address}
* ``n3xt_creds.source.reads`` {source, result: success | not_found | error, error.type}
* ``n3xt_creds.cache.lookups`` {level: process | shared, result: hit | miss}
* ``n3xt_creds.cache.failures`` (observable counter) {level: shared, condition}
* ``n3xt_creds.credentials.last_good`` {source}: refreshes that fell back on them
* ``n3xt_creds.token.cooldowns`` {error.type}: failures remembered
* ``n3xt_creds.token.remembered_failures`` {error.type}: calls answered from that memory
* ``n3xt_creds.token.expired_on_arrival`` {server.address}
* ``n3xt_creds.api.unauthorized`` {action: replayed | passed_through}

Traces: a ``n3xt_creds refresh`` span (internal) per refresh, with a ``n3xt_creds source
read`` span (internal) per source read and a ``POST`` span (client, HTTP semantic
conventions) per token request as its children; events on the refresh span for each
retry (``retry``), the ``invalid_client`` re-read (``invalid_client_reread``) and a
fall-back to the last good credentials (``last_good_credentials``). The token request
span suppresses ``opentelemetry-instrumentation-httpx`` beneath it (it *is* the HTTP
client span: one span and one ``http.client`` measurement less, never two) and
propagates its trace context in the request headers as that instrumentation would.
Neither the request body nor any header value is ever recorded.
"""

from __future__ import annotations

import functools
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from opentelemetry import context, metrics, propagate, trace

from .. import __version__
from ..credentials import Credentials
from ..errors import CredentialsNotFoundError, InvalidClientError, TokenRequestError
from .flow import (
    Action,
    CredentialsUnchanged,
    ReadCredentials,
    RefreshFlow,
    RefreshResult,
    SendTokenRequest,
    Sleep,
)
from .token import TokenResponse

if TYPE_CHECKING:
    from .telemetry import Telemetry, Trigger

_Method = TypeVar("_Method", bound=Callable[..., None])


def _harmless(method: _Method) -> _Method:
    """Recording never fails a refresh: what it raises is logged (once) and dropped."""

    @functools.wraps(method)
    def guarded(self: ObservedRefresh, *args: Any, **kwargs: Any) -> None:
        try:
            method(self, *args, **kwargs)
        except Exception as exc:
            self.t.recording_failed(exc)

    return guarded  # type: ignore[return-value]


__all__ = ["METRICS", "SCHEMA_URL", "Instruments", "ObservedRefresh", "instruments_for"]

#: The OpenTelemetry semantic conventions the HTTP attributes follow.
SCHEMA_URL = "https://opentelemetry.io/schemas/1.26.0"
_SCOPE = "n3xt_creds"

# HTTP client duration buckets recommended by the HTTP semantic conventions (seconds).
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)

#: Every instrument: name -> (kind, unit, description); kind is ``counter``,
#: ``histogram``, ``observable_counter`` or ``gauge`` (observable).
METRICS: Mapping[str, tuple[str, str, str]] = {
    "n3xt_creds.token.requests": (
        "counter",
        "{request}",
        "Token requests sent to N3XT, by result (success, invalid_client, rejected, transient).",
    ),
    "n3xt_creds.token.request.duration": (
        "histogram",
        "s",
        "Duration of one token request, from sending it to its answer or failure.",
    ),
    "n3xt_creds.token.refreshes": (
        "counter",
        "{refresh}",
        "Token refreshes (each may send several requests), by trigger and result.",
    ),
    "n3xt_creds.token.refresh.duration": (
        "histogram",
        "s",
        "Duration of one whole refresh: source read, token requests, retries and waits.",
    ),
    "n3xt_creds.token.expires_in": (
        "gauge",
        "s",
        "Seconds until the cached token expires (absent while there is none).",
    ),
    "n3xt_creds.source.reads": (
        "counter",
        "{read}",
        "Credential source reads, by source and result (success, not_found, error).",
    ),
    "n3xt_creds.cache.lookups": (
        "counter",
        "{lookup}",
        "Token cache lookups on the slow path, by level (process, shared) and result.",
    ),
    "n3xt_creds.cache.failures": (
        "observable_counter",
        "{failure}",
        "Shared cache store failures by condition (each made a refresh go on alone).",
    ),
    "n3xt_creds.credentials.last_good": (
        "counter",
        "{refresh}",
        "Refreshes that used the last good credentials because the source failed.",
    ),
    "n3xt_creds.token.remembered_failures": (
        "counter",
        "{call}",
        "Calls answered with a remembered refresh failure, without a token request.",
    ),
    "n3xt_creds.token.cooldowns": (
        "counter",
        "{cooldown}",
        "Refresh failures remembered: for a cool-down, callers get the error at once.",
    ),
    "n3xt_creds.token.expired_on_arrival": (
        "counter",
        "{token}",
        "Tokens whose lifetime was shorter than the round trip that got them.",
    ),
    "n3xt_creds.api.unauthorized": (
        "counter",
        "{request}",
        "API 401 answers to requests carrying our token: replayed with a new token, "
        "or passed through to the caller.",
    ),
}


def _error_type(exc: BaseException) -> str:
    # As opentelemetry-instrumentation-httpx does: the class's qualified name, no message.
    return type(exc).__qualname__


class Instruments:
    """The loaded API objects and instruments for one (meter, tracer) provider pair."""

    def __init__(self, meter_provider: Any, tracer_provider: Any) -> None:
        self.context = context
        self.trace = trace
        self.propagate = propagate
        # The key the HTTP instrumentations check before recording a request (private
        # in the API, shared by every instrumentation; an API without it: no suppression).
        self.suppress_http_key: str | None = getattr(
            context, "_SUPPRESS_HTTP_INSTRUMENTATION_KEY", None
        )
        self.span_kind = trace.SpanKind
        self.status_error = trace.Status(trace.StatusCode.ERROR)
        self.tracer = trace.get_tracer(
            _SCOPE, __version__, tracer_provider=tracer_provider, schema_url=SCHEMA_URL
        )
        meter = metrics.get_meter(
            _SCOPE, __version__, meter_provider=meter_provider, schema_url=SCHEMA_URL
        )
        self.observation = metrics.Observation
        self.watched: weakref.WeakSet[Telemetry] = weakref.WeakSet()
        instruments: dict[str, Any] = {}
        for name, (kind, unit, description) in METRICS.items():
            if kind == "counter":
                instruments[name] = meter.create_counter(name, unit, description)
            elif kind == "histogram":
                instruments[name] = meter.create_histogram(
                    name,
                    unit,
                    description,
                    explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
                )
            elif kind == "observable_counter":
                instruments[name] = meter.create_observable_counter(
                    name, [self._observe_store_failures], unit, description
                )
            else:
                instruments[name] = meter.create_observable_gauge(
                    name, [self._observe_expiry], unit, description
                )
        self.requests = instruments["n3xt_creds.token.requests"]
        self.request_duration = instruments["n3xt_creds.token.request.duration"]
        self.refreshes = instruments["n3xt_creds.token.refreshes"]
        self.refresh_duration = instruments["n3xt_creds.token.refresh.duration"]
        self.source_reads = instruments["n3xt_creds.source.reads"]
        self.cache_lookups = instruments["n3xt_creds.cache.lookups"]
        self.last_good = instruments["n3xt_creds.credentials.last_good"]
        self.remembered_failures = instruments["n3xt_creds.token.remembered_failures"]
        self.api_unauthorized = instruments["n3xt_creds.api.unauthorized"]
        self.cooldowns = instruments["n3xt_creds.token.cooldowns"]
        self.expired_on_arrival = instruments["n3xt_creds.token.expired_on_arrival"]

    def _observe_expiry(self, options: object) -> Iterable[Any]:
        """The gauge callback: per attribute set, the soonest expiry among authenticators."""
        soonest: dict[tuple[tuple[str, str], ...], float] = {}
        for telemetry in list(self.watched):
            remaining = telemetry.seconds_to_expiry()
            if remaining is None:
                continue
            key = tuple(sorted(telemetry.token_attributes().items()))
            soonest[key] = min(remaining, soonest.get(key, remaining))
        return [self.observation(value, dict(key)) for key, value in soonest.items()]

    def _observe_store_failures(self, options: object) -> Iterable[Any]:
        """The failures counter callback: shared cache failures by condition, summed."""
        totals: dict[str, int] = {}
        for telemetry in list(self.watched):
            for condition, count in telemetry.shared_failures().items():
                totals[condition] = totals.get(condition, 0) + count
        return [
            self.observation(count, {"level": "shared", "condition": condition})
            for condition, count in totals.items()
        ]


# (meter_provider, tracer_provider) -> instruments. The providers are kept with them:
# an id() is unique only while its object lives, and a provider built later (tests build
# one per test) must never get the instruments of a dead one that had the same id.
_loaded: dict[tuple[int, int], tuple[Any, Any, Instruments]] = {}
_load_lock = threading.Lock()


def instruments_for(meter_provider: Any, tracer_provider: Any) -> Instruments:
    """The instruments for these providers (``None``: the global ones), made once."""
    key = (id(meter_provider), id(tracer_provider))
    with _load_lock:
        if key not in _loaded:
            instruments = Instruments(meter_provider, tracer_provider)
            _loaded[key] = (meter_provider, tracer_provider, instruments)
        return _loaded[key][2]


def _new_lock_in_child() -> None:
    global _load_lock  # noqa: PLW0603 - the parent's lock may have been held at fork
    _load_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_lock_in_child)


class _Step:
    """A source read or a token request in progress: its span and what it got."""

    __slots__ = (
        "action",
        "context_token",
        "duration",
        "error",
        "reason",
        "span",
        "started",
        "started_ns",
    )

    def __init__(self, action: object, span: Any, context_token: object, reason: str) -> None:
        self.action = action
        self.span = span  # None: not traced (yet): a cool-down check's read
        self.context_token = context_token
        self.reason = reason
        self.started = time.perf_counter()
        self.started_ns = time.time_ns()
        self.duration = 0.0
        self.error: BaseException | None = None  # what the driver threw, if anything


class ObservedRefresh:
    """One refresh: wraps the flow generator, sees every action, result and failure.

    A cool-down check (``lazy``) is a refresh only if the source serves new credentials:
    its span tree opens at its first token request (dated from its start, its source
    read added after the fact), and a check that finds nothing new records no span and
    counts no refresh, only its source read. During a cool-down an env or file source is
    checked at every call: that must not become a trace per call.
    """

    def __init__(
        self, telemetry: Telemetry, otel: Instruments, trigger: Trigger, *, lazy: bool
    ) -> None:
        self.t = telemetry
        self.otel = otel
        self.trigger = trigger
        self.lazy = lazy
        self.requests_sent = 0
        self.span: Any = None
        self.outer: object = None  # the context token that made the refresh span current
        self.started_ns = 0
        self.untraced_reads: list[tuple[_Step, int]] = []  # (step, ended_ns) of a check
        self.last_response: TokenResponse | None = None

    @_harmless
    def _open(self) -> None:
        """Start the refresh span (at the refresh's start) and make it current."""
        otel, t = self.otel, self.t
        self.span = otel.tracer.start_span(
            "n3xt_creds refresh",
            kind=otel.span_kind.INTERNAL,
            attributes={
                "n3xt_creds.trigger": self.trigger,
                "n3xt_creds.source": t.source,
                "server.address": t.server_address,
            },
            start_time=self.started_ns,
            # A background refresh belongs to no caller's trace (an async task inherits
            # the context of whichever request started it): a trace of its own.
            context=otel.context.Context() if self.trigger == "stale" else None,
        )
        # Current while the flow and its driver run (one thread, or one task): source
        # reads and token requests become its children.
        self.outer = otel.context.attach(otel.trace.set_span_in_context(self.span))
        parent = otel.trace.set_span_in_context(self.span)
        for step, ended_ns in self.untraced_reads:
            read = otel.tracer.start_span(
                "n3xt_creds source read",
                context=parent,
                kind=otel.span_kind.INTERNAL,
                attributes=self._read_attributes(step),
                start_time=step.started_ns,
            )
            self._end_read_span(read, step, end_time=ended_ns)
        self.untraced_reads = []

    def run(self, flow: RefreshFlow) -> RefreshFlow:
        started = time.perf_counter()
        self.started_ns = time.time_ns()
        if not self.lazy:
            self._open()
        step: _Step | None = None
        error: BaseException | None = None
        try:
            action = next(flow)
            while True:
                step, to_yield = self._begin_or_untraced(action)
                failure: Exception | None = None
                result: object = None
                try:
                    result = yield to_yield
                except Exception as exc:
                    failure = exc
                finally:
                    self._end_io(step, failure, result)
                # Thrown outside the except block (as the drivers do): nothing the flow
                # raises in turn gets the driver's exception as its __context__.
                try:
                    action = flow.send(result) if failure is None else flow.throw(failure)
                except StopIteration as stop:
                    self._settle(step, outcome=stop.value)
                    step = None
                    self._refresh_succeeded(stop.value, started)
                    return stop.value  # type: ignore[no-any-return]
                except Exception as exc:
                    self._settle(step, outcome=exc)
                    step = None
                    error = exc
                    raise
                self._settle(step, outcome=action)
                step = None
        except BaseException as exc:
            if error is None:
                error = exc
            raise
        finally:
            flow.close()
            self._finish(step, error, started)

    @_harmless
    def _finish(self, step: _Step | None, error: BaseException | None, started: float) -> None:
        if step is not None and step.span is not None:  # cancelled mid-action
            step.span.end()
        if isinstance(error, CredentialsUnchanged):
            pass  # a cool-down check that found nothing new: not a refresh
        elif isinstance(error, Exception):
            self._refresh_failed(error, started)
        elif error is not None and self.span is not None:
            self.span.add_event("cancelled")  # GeneratorExit, CancelledError: no failure
        if self.span is not None:
            self.otel.context.detach(self.outer)
            self.span.end()

    # -- a step: begin, I/O done, settled once the flow has decided ---------------------------

    def _begin_or_untraced(self, action: Action) -> tuple[_Step, Action]:
        try:
            return self._begin(action)
        except Exception as exc:
            self.t.recording_failed(exc)
            return _Step(action, None, None, "untraced"), action

    def _begin(self, action: Action) -> tuple[_Step, Action]:
        otel, t = self.otel, self.t
        if isinstance(action, SendTokenRequest) and self.span is None:
            self._open()  # a cool-down check found new credentials: a rotation refresh
        if isinstance(action, ReadCredentials):
            if self.span is None:
                return _Step(action, None, None, action.reason), action
            if action.reason == "invalid_client":
                self.span.add_event("invalid_client_reread")
            parent = otel.trace.set_span_in_context(self.span)
            span = otel.tracer.start_span(
                "n3xt_creds source read",
                context=parent,
                kind=otel.span_kind.INTERNAL,
                attributes={"n3xt_creds.source": t.source, "n3xt_creds.reason": action.reason},
            )
            token = otel.context.attach(otel.trace.set_span_in_context(span, parent))
            return _Step(action, span, token, action.reason), action
        if isinstance(action, SendTokenRequest):
            parent = otel.trace.set_span_in_context(self.span)
            attributes: dict[str, Any] = {
                "http.request.method": "POST",
                "server.address": t.server_address,
                "server.port": t.server_port,
                "url.full": t.url_full,
            }
            if self.requests_sent:
                attributes["http.request.resend_count"] = self.requests_sent
            self.requests_sent += 1
            span = otel.tracer.start_span(
                "POST", context=parent, kind=otel.span_kind.CLIENT, attributes=attributes
            )
            # This span is the HTTP client span: an httpx instrumentation beneath it would
            # record the same request again, so it is told to stand aside.
            ctx = otel.trace.set_span_in_context(span, parent)
            if otel.suppress_http_key is not None:
                ctx = otel.context.set_value(otel.suppress_http_key, True, ctx)
            carrier: dict[str, str] = {}
            otel.propagate.inject(carrier, context=ctx)
            if carrier:
                request = action.request
                action = action._replace(
                    request=request._replace(headers={**request.headers, **carrier})
                )
            token = otel.context.attach(ctx)
            return _Step(action, span, token, "request"), action
        # Sleep: the wait between attempts; the retry event was added when it was decided.
        return _Step(action, None, None, "sleep"), action

    @_harmless
    def _end_io(self, step: _Step, failure: Exception | None, result: object) -> None:
        """The driver is done with ``step``: restore the context, note what came back."""
        step.duration = time.perf_counter() - step.started
        if step.context_token is not None:
            self.otel.context.detach(step.context_token)
        step.error = failure
        if isinstance(step.action, SendTokenRequest):
            self.last_response = result if isinstance(result, TokenResponse) else None
            if self.last_response is not None and step.span is not None:
                step.span.set_attribute("http.response.status_code", self.last_response.status_code)
        elif isinstance(step.action, ReadCredentials) and isinstance(result, Credentials):
            self.t.credentials_read(result)

    @_harmless
    def _settle(self, step: _Step, *, outcome: object) -> None:
        """Record ``step`` now that the flow decided what its result meant.

        ``outcome`` is what the flow did next: its next action, its result, or the
        exception it raised.
        """
        if isinstance(step.action, SendTokenRequest):
            self._settle_request(step, outcome)
        elif isinstance(step.action, ReadCredentials):
            self._settle_read(step, outcome)

    def _read_attributes(self, step: _Step) -> dict[str, str]:
        assert isinstance(step.action, ReadCredentials)
        return {"n3xt_creds.source": self.t.source, "n3xt_creds.reason": step.action.reason}

    def _end_read_span(self, span: Any, step: _Step, *, end_time: int | None = None) -> None:
        if step.error is not None:
            span.set_attribute("error.type", _error_type(step.error))
            span.set_status(self.otel.status_error)
        span.end(end_time=end_time)

    def _settle_read(self, step: _Step, outcome: object) -> None:
        otel, t = self.otel, self.t
        attributes: dict[str, str] = {"source": t.source}
        if step.error is None:
            attributes["result"] = "success"
        else:
            kind = "not_found" if isinstance(step.error, CredentialsNotFoundError) else "error"
            attributes["result"] = kind
            attributes["error.type"] = _error_type(step.error)
            if step.reason != "invalid_client" and not isinstance(outcome, BaseException):
                # The flow went on without the source: the last good credentials.
                otel.last_good.add(1, {"source": t.source})
                if self.span is not None:
                    self.span.add_event(
                        "last_good_credentials", {"error.type": _error_type(step.error)}
                    )
                    self.span.set_attribute("n3xt_creds.last_good", True)
        otel.source_reads.add(1, attributes)
        if step.span is not None:
            self._end_read_span(step.span, step)
        else:
            self.untraced_reads.append((step, time.time_ns()))

    def _settle_request(self, step: _Step, outcome: object) -> None:
        otel, t = self.otel, self.t
        response = self.last_response if step.error is None else None
        request_id: str | None = None
        error_type: str | None = None
        if isinstance(outcome, RefreshResult):
            result = "success"
            request_id = outcome.token.request_id
        else:
            if isinstance(outcome, InvalidClientError) or (
                isinstance(outcome, ReadCredentials) and outcome.reason == "invalid_client"
            ):
                result = "invalid_client"
            elif isinstance(outcome, TokenRequestError):
                result = "transient" if outcome.retryable else "rejected"
            elif isinstance(outcome, BaseException):
                result = "rejected"
            else:
                result = "transient"  # the flow sleeps and tries again
            if isinstance(outcome, TokenRequestError):
                request_id = outcome.request_id
            if step.error is not None:
                error_type = _error_type(step.error)
            elif response is not None and response.status_code >= 400:
                error_type = str(response.status_code)
            else:
                error_type = "invalid_response"  # a 2xx that is not a token answer
            if isinstance(outcome, Sleep):
                self.span.add_event(
                    "retry",
                    {
                        "error.type": error_type,
                        "n3xt_creds.retry.delay": outcome.seconds,
                        "http.request.resend_count": self.requests_sent,
                    },
                )
        metric_attributes = t.token_attributes()
        metric_attributes["result"] = result
        otel.request_duration.record(step.duration, metric_attributes)
        if error_type is not None:
            metric_attributes["error.type"] = error_type
        otel.requests.add(1, metric_attributes)
        span = step.span
        if span is None:
            return  # its span could not be started: the metrics are recorded all the same
        if request_id is not None:
            span.set_attribute("n3xt_creds.request_id", request_id)
        if error_type is not None:
            span.set_attribute("error.type", error_type)
            span.set_status(otel.status_error)
        span.end()

    # -- the whole refresh ----------------------------------------------------------------------

    @_harmless
    def _refresh_succeeded(self, result: RefreshResult, started: float) -> None:
        self.t.refresh_ended(result)
        self._count_refresh("success", None, started)
        if self.span is not None:
            self.span.set_attribute("n3xt_creds.attempts", result.attempts)
            if result.token.request_id is not None:
                self.span.set_attribute("n3xt_creds.request_id", result.token.request_id)

    def _refresh_failed(self, error: BaseException, started: float) -> None:
        self._count_refresh("failure", _error_type(error), started)
        if self.span is not None:
            self.span.set_attribute("n3xt_creds.attempts", self.requests_sent)
            self.span.set_attribute("error.type", _error_type(error))
            # Only the class name: our messages name the client_id and a secret fingerprint.
            self.span.set_status(self.otel.status_error)

    def _count_refresh(self, result: str, error_type: str | None, started: float) -> None:
        attributes = self.t.token_attributes()
        attributes["trigger"] = self.trigger
        attributes["result"] = result
        self.otel.refresh_duration.record(time.perf_counter() - started, attributes)
        if error_type is not None:
            attributes["error.type"] = error_type
        self.otel.refreshes.add(1, attributes)
