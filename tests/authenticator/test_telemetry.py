"""OpenTelemetry metrics and spans, with the real SDK (in-memory reader and exporter) against
the emulator: every refresh trigger, retries, invalid_client with a re-read, the last good
credentials, API 401 replays; exact counts and attributes; nothing secret exported; the
hot path records nothing."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.trace import SpanKind, StatusCode

from n3xt_creds import Credentials, EnvSource, InvalidClientError
from n3xt_creds._core.logfields import FIELDS
from n3xt_creds.testing import Emulator, Fault, ManualClock
from tests._poll import await_until, wait_until
from tests.authenticator._otel import Sdk, exported_strings
from tests.authenticator._support import CANARY_SECRET, SwitchableSource, secret_of
from tests.authenticator.conftest import MakeAuth

STALE = 3300 + 1
EXPIRED = 3570 + 1
SOURCE = "SwitchableSource"  # a plugin source is named by its class


@pytest.fixture
def sdk() -> Iterator[Sdk]:
    made = Sdk()
    yield made
    made.shutdown()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def host_of(emulator: Emulator) -> str:
    return httpx.URL(emulator.url).host


def test_cold_start_records_one_refresh_with_its_source_read_and_request(
    n3xt_emulator: Emulator, make_auth: MakeAuth, sdk: Sdk, clock: ManualClock
) -> None:
    auth = make_auth(clock=clock, **sdk.providers)
    auth.get_token()
    host = host_of(n3xt_emulator)

    assert sdk.value("n3xt_creds.token.refreshes") == 1
    assert sdk.value("n3xt_creds.token.refreshes", trigger="cold", result="success") == 1
    assert sdk.value("n3xt_creds.token.requests") == 1
    assert sdk.value("n3xt_creds.token.requests", result="success", server__address=host) == 1
    assert sdk.value("n3xt_creds.token.request.duration", result="success") == 1
    assert sdk.value("n3xt_creds.token.refresh.duration", trigger="cold") == 1
    assert sdk.value("n3xt_creds.source.reads", source=SOURCE, result="success") == 1
    assert sdk.value("n3xt_creds.cache.lookups", level="process", result="miss") == 1
    # The gauge: a 3600 s token on a clock that has not moved.
    assert sdk.value("n3xt_creds.token.expires_in", server__address=host) == 3600.0
    clock.advance(600)
    assert sdk.value("n3xt_creds.token.expires_in") == 3000.0
    # No error.type on a success; nothing we did not expect.
    names = {name for name, _ in sdk.points()}
    assert names == {
        "n3xt_creds.token.refreshes",
        "n3xt_creds.token.refresh.duration",
        "n3xt_creds.token.requests",
        "n3xt_creds.token.request.duration",
        "n3xt_creds.source.reads",
        "n3xt_creds.cache.lookups",
        "n3xt_creds.token.expires_in",
    }
    assert not any("error.type" in dict(attrs) for _, attrs in sdk.points())

    spans = {span.name: span for span in sdk.spans()}
    assert sdk.span_names() == {"n3xt_creds refresh": 1, "n3xt_creds source read": 1, "POST": 1}
    refresh, read, post = (
        spans["n3xt_creds refresh"],
        spans["n3xt_creds source read"],
        spans["POST"],
    )
    assert refresh.kind is SpanKind.INTERNAL
    assert refresh.parent is None
    assert dict(refresh.attributes or {}) == {
        "n3xt_creds.trigger": "cold",
        "n3xt_creds.source": SOURCE,
        "server.address": host,
        "n3xt_creds.attempts": 1,
        "n3xt_creds.request_id": dict(post.attributes or {})["n3xt_creds.request_id"],
    }
    assert read.kind is SpanKind.INTERNAL
    assert read.parent is not None and read.parent.span_id == refresh.context.span_id
    assert dict(read.attributes or {}) == {
        "n3xt_creds.source": SOURCE,
        "n3xt_creds.reason": "refresh",
    }
    assert post.kind is SpanKind.CLIENT
    assert post.parent is not None and post.parent.span_id == refresh.context.span_id
    attributes = dict(post.attributes or {})
    assert attributes.pop("n3xt_creds.request_id")
    assert attributes == {
        "http.request.method": "POST",
        "server.address": host,
        "server.port": httpx.URL(n3xt_emulator.url).port,
        "url.full": n3xt_emulator.token_url(),
        "http.response.status_code": 200,
    }
    assert post.status.status_code is StatusCode.UNSET
    assert refresh.status.status_code is StatusCode.UNSET

    clock.advance(4000)
    assert sdk.value("n3xt_creds.token.expires_in") == 0.0  # expired: 0, never negative


def test_a_closed_authenticator_leaves_the_expiry_gauge(
    make_auth: MakeAuth, sdk: Sdk, clock: ManualClock
) -> None:
    first = make_auth(clock=clock, **sdk.providers)
    second = make_auth(clock=clock, **sdk.providers)
    first.get_token()
    clock.advance(100)
    second.get_token()
    # Same attributes: the gauge shows the token that expires first.
    assert sdk.value("n3xt_creds.token.expires_in") == 3500.0
    first.close()
    assert sdk.value("n3xt_creds.token.expires_in") == 3600.0
    second.close()
    assert not [key for key in sdk.points() if key[0] == "n3xt_creds.token.expires_in"]


def test_the_hot_path_records_nothing(make_auth: MakeAuth, sdk: Sdk, clock: ManualClock) -> None:
    auth = make_auth(clock=clock, **sdk.providers)
    auth.get_token()
    clock.advance(STALE - 2)
    before, spans_before = sdk.points(), len(sdk.spans())
    for _ in range(200):
        auth.get_token()
        auth.headers()
    assert asyncio.run(auth.aget_token())
    after = sdk.points()
    after.pop(next(key for key in after if key[0] == "n3xt_creds.token.expires_in"))
    before.pop(next(key for key in before if key[0] == "n3xt_creds.token.expires_in"))
    assert after == before
    assert len(sdk.spans()) == spans_before


def test_stale_expired_invalidate_and_api_401_triggers(
    n3xt_emulator: Emulator, make_auth: MakeAuth, sdk: Sdk, clock: ManualClock
) -> None:
    auth = make_auth(clock=clock, **sdk.providers)
    auth.get_token()

    clock.advance(STALE)
    auth.get_token()  # the stale token, and a background refresh
    wait_until(lambda: sdk.value("n3xt_creds.token.refreshes") == 2, what="background refresh")
    assert sdk.value("n3xt_creds.token.refreshes", trigger="stale", result="success") == 1
    stale = next(
        s for s in sdk.spans() if dict(s.attributes or {}).get("n3xt_creds.trigger") == "stale"
    )
    assert stale.parent is None  # a trace of its own, never a caller's
    assert sdk.value("n3xt_creds.cache.lookups", level="process", result="hit") == 1

    clock.advance(EXPIRED)
    auth.get_token()
    assert sdk.value("n3xt_creds.token.refreshes", trigger="expired", result="success") == 1

    auth.invalidate()
    auth.get_token()
    assert sdk.value("n3xt_creds.token.refreshes", trigger="invalidate", result="success") == 1

    with httpx.Client(auth=auth) as client:
        n3xt_emulator.revoke_tokens()
        assert client.get(n3xt_emulator.api_url()).status_code == 200  # 401, new token, replay
    assert sdk.value("n3xt_creds.token.refreshes", trigger="api_401", result="success") == 1
    assert sdk.value("n3xt_creds.api.unauthorized", action="replayed") == 1

    assert sdk.value("n3xt_creds.token.refreshes") == 5
    assert sdk.value("n3xt_creds.token.requests", result="success") == 5
    assert sdk.value("n3xt_creds.cache.lookups", level="process", result="miss") == 4
    triggers = [
        dict(s.attributes or {})["n3xt_creds.trigger"]
        for s in sdk.spans()
        if s.name == "n3xt_creds refresh"
    ]
    assert triggers == ["cold", "stale", "expired", "invalidate", "api_401"]


def test_a_streamed_request_s_401_is_passed_through_and_counted(
    n3xt_emulator: Emulator, make_auth: MakeAuth, sdk: Sdk
) -> None:
    auth = make_auth(**sdk.providers)
    with httpx.Client(auth=auth) as client:
        client.get(n3xt_emulator.api_url())
        n3xt_emulator.revoke_tokens()
        response = client.post(
            n3xt_emulator.api_url(), content=iter([b"chunk"]), headers={"Content-Length": "5"}
        )
    assert response.status_code == 401
    assert sdk.value("n3xt_creds.api.unauthorized", action="passed_through") == 1
    assert sdk.value("n3xt_creds.api.unauthorized", action="replayed") == 0


def test_transient_failures_are_retried_with_events_and_resend_counts(
    n3xt_emulator: Emulator, make_auth: MakeAuth, sdk: Sdk
) -> None:
    n3xt_emulator.inject_fault(Fault.UNAVAILABLE)
    n3xt_emulator.inject_fault(Fault.GARBAGE_200)
    auth = make_auth(**sdk.providers)
    auth.get_token()

    assert sdk.value("n3xt_creds.token.requests", result="transient", error__type="503") == 1
    assert (
        sdk.value("n3xt_creds.token.requests", result="transient", error__type="invalid_response")
        == 1
    )
    assert sdk.value("n3xt_creds.token.requests", result="success") == 1
    assert sdk.value("n3xt_creds.token.request.duration", result="transient") == 2
    assert sdk.value("n3xt_creds.token.refreshes", trigger="cold", result="success") == 1

    posts = [s for s in sdk.spans() if s.name == "POST"]
    assert [dict(s.attributes or {}).get("http.request.resend_count") for s in posts] == [
        None,
        1,
        2,
    ]
    assert [dict(s.attributes or {})["http.response.status_code"] for s in posts] == [503, 200, 200]
    assert [s.status.status_code for s in posts] == [
        StatusCode.ERROR,
        StatusCode.ERROR,
        StatusCode.UNSET,
    ]
    assert [dict(s.attributes or {}).get("error.type") for s in posts] == [
        "503",
        "invalid_response",
        None,
    ]
    (refresh,) = [s for s in sdk.spans() if s.name == "n3xt_creds refresh"]
    retries = [e for e in refresh.events if e.name == "retry"]
    assert [dict(e.attributes or {})["error.type"] for e in retries] == ["503", "invalid_response"]
    assert [dict(e.attributes or {})["http.request.resend_count"] for e in retries] == [1, 2]
    assert all(dict(e.attributes or {})["n3xt_creds.retry.delay"] >= 0 for e in retries)
    assert dict(refresh.attributes or {})["n3xt_creds.attempts"] == 3


def test_connection_failures_carry_the_exception_class(make_auth: MakeAuth, sdk: Sdk) -> None:
    from n3xt_creds import RetryPolicy, TokenRequestError

    # A port nobody listens on: every attempt fails to connect; the refresh gives up.
    auth = make_auth(
        token_url="http://127.0.0.1:9/v1/public/p/oauth2/token",
        retry=RetryPolicy(max_attempts=2, base_delay=0.001, max_delay=0.002, deadline=5.0),
        **sdk.providers,
    )
    with pytest.raises(TokenRequestError):
        auth.get_token()
    assert (
        sdk.value("n3xt_creds.token.requests", result="transient", error__type="ConnectError") == 2
    )
    assert (
        sdk.value(
            "n3xt_creds.token.refreshes",
            trigger="cold",
            result="failure",
            error__type="TokenRequestError",
        )
        == 1
    )
    refresh = next(s for s in sdk.spans() if s.name == "n3xt_creds refresh")
    assert refresh.status.status_code is StatusCode.ERROR
    assert refresh.status.description is None  # never the message: it names the client
    assert [s.name for s in sdk.spans()].count("POST") == 2


def test_a_final_refusal_is_rejected_with_its_status(
    n3xt_emulator: Emulator, make_auth: MakeAuth, sdk: Sdk
) -> None:
    from n3xt_creds import TokenRequestError

    # A token_url path the endpoint does not know: 404, not retried.
    auth = make_auth(
        token_url=f"{n3xt_emulator.url}/v1/public/project-test/oauth2/nope", **sdk.providers
    )
    with pytest.raises(TokenRequestError) as failure:
        auth.get_token()
    assert sdk.value("n3xt_creds.token.requests", result="rejected", error__type="404") == 1
    assert sdk.value("n3xt_creds.token.requests") == 1
    post = next(s for s in sdk.spans() if s.name == "POST")
    attributes = dict(post.attributes or {})
    assert (attributes["http.response.status_code"], attributes["error.type"]) == (404, "404")
    assert attributes["n3xt_creds.request_id"] == failure.value.request_id


class SequenceSource:
    """Serves one pair per read, then keeps serving the last."""

    def __init__(self, *pairs: Credentials) -> None:
        self._pairs = list(pairs)

    def get_credentials(self) -> Credentials:
        return self._pairs.pop(0) if len(self._pairs) > 1 else self._pairs[0]


def test_invalid_client_then_rotated_pair_after_the_reread(
    n3xt_emulator: Emulator, make_auth: MakeAuth, sdk: Sdk, creds: Credentials
) -> None:
    rotated = n3xt_emulator.rotate_client(creds.client_id)
    auth = make_auth(source=SequenceSource(creds, rotated), **sdk.providers)
    auth.get_token()

    assert sdk.value("n3xt_creds.token.requests", result="invalid_client", error__type="401") == 1
    assert sdk.value("n3xt_creds.token.requests", result="success") == 1
    assert sdk.value("n3xt_creds.source.reads", source="SequenceSource", result="success") == 2
    assert sdk.value("n3xt_creds.token.refreshes", result="success") == 1
    refresh = next(s for s in sdk.spans() if s.name == "n3xt_creds refresh")
    assert [e.name for e in refresh.events] == ["invalid_client_reread"]
    reads = [
        dict(s.attributes or {})["n3xt_creds.reason"]
        for s in sdk.spans()
        if s.name == "n3xt_creds source read"
    ]
    assert reads == ["refresh", "invalid_client"]


def test_invalid_client_for_good(
    n3xt_emulator: Emulator, make_auth: MakeAuth, sdk: Sdk, creds: Credentials
) -> None:
    n3xt_emulator.rotate_client(creds.client_id)
    auth = make_auth(**sdk.providers)  # the source keeps serving the old pair
    with pytest.raises(InvalidClientError):
        auth.get_token()
    assert sdk.value("n3xt_creds.token.requests", result="invalid_client", error__type="401") == 1
    assert sdk.value("n3xt_creds.token.requests") == 1
    assert (
        sdk.value("n3xt_creds.token.refreshes", result="failure", error__type="InvalidClientError")
        == 1
    )
    assert sdk.value("n3xt_creds.source.reads", result="success") == 2


def test_source_outage_uses_the_last_good_credentials(
    make_auth: MakeAuth, sdk: Sdk, source: SwitchableSource, clock: ManualClock
) -> None:
    auth = make_auth(clock=clock, **sdk.providers)
    auth.get_token()
    source.fail()
    clock.advance(EXPIRED)
    auth.get_token()

    assert (
        sdk.value(
            "n3xt_creds.source.reads", source=SOURCE, result="error", error__type="SourceError"
        )
        == 1
    )
    assert sdk.value("n3xt_creds.credentials.last_good", source=SOURCE) == 1
    assert sdk.value("n3xt_creds.token.refreshes", trigger="expired", result="success") == 1
    refresh = [s for s in sdk.spans() if s.name == "n3xt_creds refresh"][-1]
    assert [e.name for e in refresh.events] == ["last_good_credentials"]
    assert dict(refresh.attributes or {})["n3xt_creds.last_good"] is True
    read = [s for s in sdk.spans() if s.name == "n3xt_creds source read"][-1]
    assert read.status.status_code is StatusCode.ERROR


def test_a_remembered_failure_then_rotated_credentials_at_the_source(
    n3xt_emulator: Emulator, make_auth: MakeAuth, sdk: Sdk, creds: Credentials, clock: ManualClock
) -> None:
    # An env source is re-checked at every call of a cool-down: that must not become a
    # refresh (or a trace) per call, only a source read each.
    environ = {"N3XT_CLIENT_ID": creds.client_id, "N3XT_CLIENT_SECRET": "not-the-secret"}
    auth = make_auth(clock=clock, source=EnvSource(environ=environ), **sdk.providers)
    with pytest.raises(InvalidClientError):
        auth.get_token()
    for _ in range(5):
        with pytest.raises(InvalidClientError):
            auth.get_token()
    assert n3xt_emulator.counters.token_requests_total == 1
    assert sdk.value("n3xt_creds.token.cooldowns", error__type="InvalidClientError") == 1
    assert sdk.value("n3xt_creds.token.remembered_failures", error__type="InvalidClientError") == 5
    assert sdk.value("n3xt_creds.token.refreshes") == 1  # the failed one; no check counted
    assert sdk.value("n3xt_creds.token.requests", result="invalid_client") == 1
    assert sdk.value("n3xt_creds.source.reads", source="env", result="success") == 2 + 5
    assert sdk.span_names() == {"n3xt_creds refresh": 1, "n3xt_creds source read": 2, "POST": 1}

    environ["N3XT_CLIENT_SECRET"] = secret_of(creds)  # the operator fixes the secret
    assert auth.get_token()
    assert sdk.value("n3xt_creds.token.refreshes", trigger="rotation", result="success") == 1
    rotation = [s for s in sdk.spans() if s.name == "n3xt_creds refresh"][-1]
    assert dict(rotation.attributes or {})["n3xt_creds.trigger"] == "rotation"
    children = [s for s in sdk.spans() if s.parent and s.parent.span_id == rotation.context.span_id]
    assert sorted(s.name for s in children) == ["POST", "n3xt_creds source read"]
    read = next(s for s in children if s.name == "n3xt_creds source read")
    assert rotation.start_time is not None and read.start_time is not None
    assert rotation.start_time <= read.start_time <= read.end_time  # type: ignore[operator]
    assert dict(read.attributes or {})["n3xt_creds.reason"] == "cooldown_check"


def test_async_refresh_records_the_same(
    n3xt_emulator: Emulator, make_auth: MakeAuth, sdk: Sdk
) -> None:
    auth = make_auth(**sdk.providers)

    async def main() -> None:
        await asyncio.gather(*(auth.aget_token() for _ in range(10)))
        await auth.aclose()

    asyncio.run(main())
    assert sdk.value("n3xt_creds.token.refreshes", trigger="cold", result="success") == 1
    assert sdk.value("n3xt_creds.token.requests", result="success") == 1
    assert sdk.value("n3xt_creds.cache.lookups", level="process", result="miss") == 10
    assert sdk.span_names() == {"n3xt_creds refresh": 1, "n3xt_creds source read": 1, "POST": 1}
    post = next(s for s in sdk.spans() if s.name == "POST")
    refresh = next(s for s in sdk.spans() if s.name == "n3xt_creds refresh")
    assert post.parent is not None and post.parent.span_id == refresh.context.span_id


def test_a_caller_s_refresh_joins_its_trace_a_background_one_has_its_own(
    make_auth: MakeAuth, sdk: Sdk, clock: ManualClock
) -> None:
    auth = make_auth(clock=clock, **sdk.providers)
    tracer = sdk.tracer_provider.get_tracer("app")

    async def main() -> None:
        with tracer.start_as_current_span("handler 1"):
            await auth.aget_token()  # cold: this caller waits, its trace shows why
        clock.advance(STALE)
        with tracer.start_as_current_span("handler 2"):
            await auth.aget_token()  # stale: a background task, inheriting this context
        await await_until(lambda: sdk.value("n3xt_creds.token.refreshes") == 2)
        await auth.aclose()

    asyncio.run(main())
    spans = {s.name: s for s in sdk.spans() if s.name.startswith("handler")}
    refreshes = [s for s in sdk.spans() if s.name == "n3xt_creds refresh"]
    cold, stale = sorted(refreshes, key=lambda s: s.start_time or 0)
    assert cold.parent is not None and cold.parent.span_id == spans["handler 1"].context.span_id
    assert stale.parent is None


def test_a_refresh_cancelled_mid_request_ends_its_spans_and_counts_no_failure(
    n3xt_emulator: Emulator, make_auth: MakeAuth, sdk: Sdk, caplog: pytest.LogCaptureFixture
) -> None:
    auth = make_auth(**sdk.providers)

    async def main() -> None:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(auth.aget_token(), 0.2)
        # The refresh task is still waiting for the held answer; asyncio.run cancels it.

    n3xt_emulator.pause()
    try:
        asyncio.run(main())
    finally:
        n3xt_emulator.resume()
    refresh = next(s for s in sdk.spans() if s.name == "n3xt_creds refresh")
    assert [e.name for e in refresh.events] == ["cancelled"]
    post = next(s for s in sdk.spans() if s.name == "POST")
    assert post.end_time is not None
    assert sdk.value("n3xt_creds.token.refreshes") == 0
    assert sdk.value("n3xt_creds.token.requests") == 0  # no answer, no outcome to count
    assert "Failed to detach context" not in caplog.text


def test_httpx_instrumentation_adds_no_second_span_for_the_token_request(
    n3xt_emulator: Emulator, make_auth: MakeAuth, sdk: Sdk
) -> None:
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    sent: list[httpx.Headers] = []
    token_client = httpx.Client(event_hooks={"request": [lambda r: sent.append(r.headers)]})
    api_client = httpx.Client()
    instrumentor = HTTPXClientInstrumentor()
    for client in (token_client, api_client):
        instrumentor.instrument_client(client, **sdk.providers)
    try:
        auth = make_auth(http_client=token_client, **sdk.providers)
        api_client.auth = auth
        assert api_client.get(n3xt_emulator.api_url()).status_code == 200
    finally:
        for client in (token_client, api_client):
            instrumentor.uninstrument_client(client)
            client.close()

    # One CLIENT span for the token request (ours), one for the API call (httpx's).
    clients = [s for s in sdk.spans() if s.kind is SpanKind.CLIENT]
    assert len(clients) == 2
    ours = next(
        s
        for s in clients
        if s.instrumentation_scope and s.instrumentation_scope.name == "n3xt_creds"
    )
    theirs = next(s for s in clients if s is not ours)
    # (older or newer HTTP conventions, whichever the instrumentation is set to)
    attributes = dict(theirs.attributes or {})
    assert attributes.get("url.full", attributes.get("http.url")) == n3xt_emulator.api_url()
    # The instrumentation measured only the API call; our token metrics the token request.
    http_names = ("http.client.request.duration", "http.client.duration")
    assert sum(count for (name, _), count in sdk.points().items() if name in http_names) == 1
    assert sdk.value("n3xt_creds.token.requests") == 1
    # The trace context still reaches N3XT, as the instrumentation would have sent it.
    (headers,) = sent
    assert headers["traceparent"].split("-")[2] == format(ours.context.span_id, "016x")
    assert "authorization" not in {key.lower() for key in headers}


def test_nothing_secret_in_any_exported_attribute_event_or_log_field(
    n3xt_emulator: Emulator,
    make_auth: MakeAuth,
    sdk: Sdk,
    source: SwitchableSource,
    creds: Credentials,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    tokens: set[str] = set()
    auth = make_auth(clock=clock, **sdk.providers)
    tokens.add(auth.get_token())
    n3xt_emulator.inject_fault(Fault.SERVER_ERROR)
    clock.advance(EXPIRED)
    tokens.add(auth.get_token())
    with httpx.Client(auth=auth) as client:
        n3xt_emulator.revoke_tokens()
        client.get(n3xt_emulator.api_url())
    tokens.add(auth.get_token())
    source.fail()
    clock.advance(EXPIRED)
    tokens.add(auth.get_token())
    source.fail(False)
    n3xt_emulator.rotate_client(creds.client_id)
    auth.invalidate()
    with pytest.raises(InvalidClientError):
        auth.get_token()

    secrets = {CANARY_SECRET, secret_of(creds), creds.client_secret.fingerprint, creds.client_id}
    secrets |= tokens
    exported = exported_strings(sdk)
    fields = [
        f"{key}={value}"
        for record in caplog.records
        for key, value in vars(record).items()
        if key not in ("msg", "args", "message") and not key.startswith("_")
    ]
    for text in exported + fields:
        for secret in secrets:
            assert secret not in text, text
    assert len(exported) > 50  # the scan saw everything above


def test_log_records_carry_the_same_fields(
    n3xt_emulator: Emulator, make_auth: MakeAuth, sdk: Sdk, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="n3xt_creds")
    n3xt_emulator.inject_fault(Fault.UNAVAILABLE)
    auth = make_auth(**sdk.providers)
    auth.get_token()
    auth.invalidate()
    auth.get_token()
    ours = [r for r in caplog.records if r.name == "n3xt_creds"]
    assert ours
    for record in ours:
        assert {name: hasattr(record, name) for name in FIELDS} == dict.fromkeys(FIELDS, True)
    by_event = {}
    for record in ours:
        by_event.setdefault(record.event, []).append(record)  # type: ignore[attr-defined]
    retry = by_event["token_request_retry"][0]
    assert (retry.trigger, retry.result) == ("cold", "transient")  # type: ignore[attr-defined]
    assert retry.getMessage().startswith("Token request attempt 1 failed (status=503")
    succeeded = by_event["refresh_succeeded"]
    assert [(r.trigger, r.result) for r in succeeded] == [  # type: ignore[attr-defined]
        ("cold", "success"),
        ("invalidate", "success"),
    ]
    posts = [
        s for s in sdk.spans() if s.name == "POST" and s.status.status_code is StatusCode.UNSET
    ]
    assert [r.request_id for r in succeeded] == [  # type: ignore[attr-defined]
        dict(s.attributes or {})["n3xt_creds.request_id"] for s in posts
    ]
    assert all(isinstance(r.duration, float) and r.duration >= 0 for r in succeeded)  # type: ignore[attr-defined]
    assert by_event["token_invalidated"][0].trigger == "invalidate"  # type: ignore[attr-defined]


class BrokenProcessor(SpanProcessor):
    """A span processor that raises: the SDK calls it inline, inside our refresh."""

    def on_start(self, span: object, parent_context: object = None) -> None:
        raise RuntimeError("broken span processor (on purpose)")


def test_broken_telemetry_never_fails_authentication(
    n3xt_emulator: Emulator, make_auth: MakeAuth, sdk: Sdk, caplog: pytest.LogCaptureFixture
) -> None:
    sdk.tracer_provider.add_span_processor(BrokenProcessor())
    auth = make_auth(**sdk.providers)
    assert auth.get_token()
    auth.invalidate()
    assert auth.get_token()
    assert asyncio.run(auth.aget_token())
    assert n3xt_emulator.counters.token_requests_total == 2
    warnings = [r for r in caplog.records if r.getMessage().startswith("OpenTelemetry recording")]
    assert len(warnings) == 1  # once per kind of failure, not per span
    assert "broken span processor" in warnings[0].getMessage()
    assert sdk.value("n3xt_creds.token.refreshes", result="success") == 2  # metrics go on


def test_client_id_only_when_opted_in(make_auth: MakeAuth, sdk: Sdk, creds: Credentials) -> None:
    auth = make_auth(telemetry_client_id=True, **sdk.providers)
    auth.get_token()
    assert sdk.value("n3xt_creds.token.requests", n3xt_creds__client_id=creds.client_id) == 1
    assert sdk.value("n3xt_creds.token.expires_in", n3xt_creds__client_id=creds.client_id) > 0


def test_without_opentelemetry_installed_everything_still_works(n3xt_emulator: Emulator) -> None:
    creds = n3xt_emulator.add_client()
    script = f"""
import sys
sys.modules["opentelemetry"] = None  # as if opentelemetry-api were not installed
from n3xt_creds import Authenticator, Credentials, Secret
class Source:
    def get_credentials(self):
        return Credentials({creds.client_id!r}, Secret({secret_of(creds)!r}))
with Authenticator(Source(), token_url={n3xt_emulator.token_url()!r}) as auth:
    assert auth.get_token()
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ok\n"


def test_an_sdk_configured_after_the_authenticator_still_gets_everything(
    n3xt_emulator: Emulator,
) -> None:
    # Global providers can be set once per process: a fresh interpreter.
    creds = n3xt_emulator.add_client()
    script = f"""
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from n3xt_creds import Authenticator, Credentials, Secret

class Source:
    def get_credentials(self):
        return Credentials({creds.client_id!r}, Secret({secret_of(creds)!r}))

with Authenticator(Source(), token_url={n3xt_emulator.token_url()!r}) as auth:
    auth.get_token()  # no SDK yet: the API's no-op proxies
    reader, exporter = InMemoryMetricReader(), InMemorySpanExporter()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    auth.invalidate()
    auth.get_token()
    names = sorted(span.name for span in exporter.get_finished_spans())
    points = [
        (metric.name, dict(point.attributes), point.value)
        for rm in reader.get_metrics_data().resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
        if metric.name == "n3xt_creds.token.refreshes"
        for point in metric.data.data_points
    ]
print(names)
print([(name, attrs["trigger"], value) for name, attrs, value in points])
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "['POST', 'n3xt_creds refresh', 'n3xt_creds source read']",
        "[('n3xt_creds.token.refreshes', 'invalidate', 1)]",
    ]
