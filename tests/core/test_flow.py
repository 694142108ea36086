"""refresh_flow driven by a scripted world on a fake clock: retries, deadline, re-reads."""

from __future__ import annotations

import asyncio
import json
import logging
import random

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from n3xt_creds import (
    Credentials,
    CredentialsNotFoundError,
    InvalidClientError,
    SourceError,
    TokenRequestError,
)
from n3xt_creds._core.flow import (
    ReadCredentials,
    RetryPolicy,
    SendTokenRequest,
    Sleep,
    refresh_flow,
    run_async,
)
from n3xt_creds._core.token import TokenResponse
from tests.core._support import (
    CANARY_SECRET,
    CANARY_TOKEN,
    TOKEN_URL,
    ManualClock,
    ScriptedDriver,
    ok,
    response,
)

ROTATED_SECRET = "ROTATED-SECRET-0a9c"
INVALID_CLIENT = response(
    401, {"status_code": 401, "error": "invalid_client", "request_id": "r401"}
)


def flow(
    clock: ManualClock, policy: RetryPolicy | None = None, last_good: Credentials | None = None
):  # type: ignore[no-untyped-def]
    return refresh_flow(
        token_url=TOKEN_URL,
        refresh_margin=300.0,
        policy=policy or RetryPolicy(),
        last_good=last_good,
        clock=clock,
        rng=random.Random(1234),
    )


def driver(
    clock: ManualClock, answers: list, credentials: list, latency: float = 0.0
) -> ScriptedDriver:  # type: ignore[type-arg]
    return ScriptedDriver(clock, answers, credentials, latency=latency)


def connect_error() -> httpx.ConnectError:
    return httpx.ConnectError("[Errno 111] Connection refused")


# -- the happy path and the protocol ---------------------------------------------------


def test_first_action_is_read_then_send(clock: ManualClock, creds: Credentials) -> None:
    gen = flow(clock)
    assert next(gen) == ReadCredentials("refresh")
    action = gen.send(creds)
    assert isinstance(action, SendTokenRequest)
    assert json.loads(action.request.content)["client_secret"] == CANARY_SECRET
    assert action.time_left == 30.0
    with pytest.raises(StopIteration) as stop:
        gen.send(ok())
    assert stop.value.value.token.value() == CANARY_TOKEN


def test_success_first_try(clock: ManualClock, creds: Credentials) -> None:
    world = driver(clock, [ok()], [creds], latency=0.2)
    sent_at = clock()
    result = world.run(flow(clock))
    assert result.token.value() == CANARY_TOKEN
    assert result.token.obtained_at == sent_at  # the send time: lifetime never overestimated
    assert result.credentials is creds
    assert result.attempts == 1
    assert result.elapsed == pytest.approx(0.2)
    assert world.reads == ["refresh"]
    assert world.sleeps == []


def test_custom_reason_is_passed_to_the_first_read(clock: ManualClock, creds: Credentials) -> None:
    world = driver(clock, [ok()], [creds])
    world.run(
        refresh_flow(
            token_url=TOKEN_URL,
            refresh_margin=300.0,
            policy=RetryPolicy(),
            last_good=None,
            clock=clock,
            reason="api_401",
        )
    )
    assert world.reads == ["api_401"]


def test_retries_transient_failures_then_succeeds(clock: ManualClock, creds: Credentials) -> None:
    answers = [
        response(500, {"status_code": 500}),
        connect_error(),
        response(200, raw=b"<html>gateway</html>", headers={"Content-Type": "text/html"}),
        httpx.ReadTimeout("timed out"),
        ok(),
    ]
    policy = RetryPolicy(max_attempts=5, base_delay=0.1, max_delay=5.0)
    world = driver(clock, answers, [creds])
    result = world.run(flow(clock, policy))
    assert result.attempts == 5
    assert world.reads == ["refresh"]  # credentials are read once per refresh
    assert len(world.sleeps) == 4
    for failures, delay in enumerate(world.sleeps, start=1):
        assert 0.0 <= delay <= min(5.0, 0.1 * 2 ** (failures - 1))


def test_time_left_shrinks_with_each_attempt(clock: ManualClock, creds: Credentials) -> None:
    world = driver(clock, [connect_error(), connect_error(), ok()], [creds], latency=1.0)
    world.run(flow(clock, RetryPolicy(deadline=10.0)))
    left = [action.time_left for action in world.sent]
    assert left[0] == 10.0
    assert left == sorted(left, reverse=True)
    assert len(set(left)) == 3


def test_final_error_is_not_retried(clock: ManualClock, creds: Credentials) -> None:
    world = driver(clock, [response(400, {"error": "invalid_request"})], [creds])
    with pytest.raises(TokenRequestError) as info:
        world.run(flow(clock))
    assert not info.value.retryable
    assert info.value.status_code == 400
    assert len(world.sent) == 1
    assert world.sleeps == []


def test_unknown_driver_exception_propagates_unchanged(
    clock: ManualClock, creds: Credentials
) -> None:
    bug = ValueError("driver bug")
    world = driver(clock, [bug], [creds])
    with pytest.raises(ValueError, match="driver bug") as info:
        world.run(flow(clock))
    assert info.value is bug


def test_driver_sending_the_wrong_type_is_a_type_error(
    clock: ManualClock, creds: Credentials
) -> None:
    gen = flow(clock)
    next(gen)
    with pytest.raises(TypeError, match="expected Credentials"):
        gen.send({"client_id": "x"})


# -- bounds: attempts, deadline, Retry-After -------------------------------------------


def test_max_attempts_respected(clock: ManualClock, creds: Credentials) -> None:
    world = driver(clock, [response(503, {})] * 10, [creds])
    with pytest.raises(TokenRequestError) as info:
        world.run(flow(clock, RetryPolicy(max_attempts=3, deadline=1000.0)))
    assert len(world.sent) == 3
    assert len(world.sleeps) == 2
    assert info.value.retryable
    assert info.value.status_code == 503
    assert "all 3 attempts failed" in str(info.value)


def test_single_attempt_policy_never_sleeps(clock: ManualClock, creds: Credentials) -> None:
    world = driver(clock, [connect_error()], [creds])
    with pytest.raises(TokenRequestError) as info:
        world.run(flow(clock, RetryPolicy(max_attempts=1)))
    assert world.sleeps == []
    assert info.value.status_code is None
    assert "Connection refused" in str(info.value)


def test_deadline_respected(clock: ManualClock, creds: Credentials) -> None:
    policy = RetryPolicy(max_attempts=1000, base_delay=0.5, max_delay=1.0, deadline=5.0)
    world = driver(clock, [response(503, {})] * 1000, [creds], latency=0.1)
    start = clock()
    with pytest.raises(TokenRequestError) as info:
        world.run(flow(clock, policy))
    assert sum(world.sleeps) <= 5.0
    # Every attempt started before the deadline; the last may end one latency after.
    assert clock() - start <= 5.0 + 0.1
    assert len(world.sent) > 3
    assert "deadline" in str(info.value)


@settings(max_examples=60, deadline=None)
@given(
    max_attempts=st.integers(1, 20),
    base_delay=st.floats(0.0, 2.0),
    max_delay=st.floats(0.0, 10.0),
    deadline=st.floats(0.01, 60.0),
    latency=st.floats(0.0, 3.0),
    retry_after=st.none() | st.floats(0.0, 20.0),
    seed=st.integers(0, 2**32),
)
def test_bounds_hold_for_any_policy(
    max_attempts: int,
    base_delay: float,
    max_delay: float,
    deadline: float,
    latency: float,
    retry_after: float | None,
    seed: int,
) -> None:
    clock = ManualClock()
    headers = {} if retry_after is None else {"Retry-After": repr(retry_after)}
    world = driver(
        clock, [response(429, {}, headers=headers)] * 25, [Credentials("c", "s")], latency
    )
    policy = RetryPolicy(max_attempts, base_delay, max_delay, deadline)
    gen = refresh_flow(
        token_url=TOKEN_URL,
        refresh_margin=300.0,
        policy=policy,
        last_good=None,
        clock=clock,
        rng=random.Random(seed),
    )
    with pytest.raises(TokenRequestError):
        world.run(gen)
    assert 1 <= len(world.sent) <= max_attempts
    assert sum(world.sleeps) <= deadline
    for action in world.sent:  # no attempt starts at or after the deadline
        assert action.time_left is not None and action.time_left > 0
    if retry_after is not None:
        assert all(delay == retry_after for delay in world.sleeps)
    else:
        assert all(delay <= max_delay for delay in world.sleeps)


def test_retry_after_honoured(clock: ManualClock, creds: Credentials) -> None:
    throttled = response(429, {"request_id": "r429"}, headers={"Retry-After": "3"})
    world = driver(clock, [throttled, ok()], [creds])
    result = world.run(flow(clock, RetryPolicy(max_delay=0.5)))
    assert world.sleeps == [3.0]  # the server's wait, even above max_delay
    assert result.attempts == 2


def test_retry_after_beyond_deadline_gives_up_at_once(
    clock: ManualClock, creds: Credentials
) -> None:
    throttled = response(503, {"request_id": "r503"}, headers={"Retry-After": "60"})
    world = driver(clock, [throttled, ok()], [creds])
    with pytest.raises(TokenRequestError) as info:
        world.run(flow(clock, RetryPolicy(deadline=30.0)))
    assert world.sleeps == []
    assert len(world.sent) == 1
    assert info.value.retry_after == 60.0
    assert info.value.request_id == "r503"
    assert "Retry-After" in str(info.value)


# -- invalid_client and rotation -------------------------------------------------------


def test_invalid_client_same_pair_rereads_once_and_does_not_resend(
    clock: ManualClock, creds: Credentials
) -> None:
    world = driver(clock, [INVALID_CLIENT, ok()], [creds, Credentials("client-1", CANARY_SECRET)])
    with pytest.raises(InvalidClientError) as info:
        world.run(flow(clock))
    assert world.reads == ["refresh", "invalid_client"]
    assert len(world.sent) == 1
    assert world.sleeps == []
    message = str(info.value)
    assert "still serves" in message
    assert "client-1" in message
    assert creds.client_secret.fingerprint in message
    assert info.value.status_code == 401
    assert info.value.request_id == "r401"


def test_rotated_credentials_recover(clock: ManualClock, creds: Credentials) -> None:
    rotated = Credentials("client-1", ROTATED_SECRET, source="test:rotated")
    world = driver(clock, [INVALID_CLIENT, ok()], [creds, rotated])
    result = world.run(flow(clock))
    assert result.credentials is rotated
    assert world.reads == ["refresh", "invalid_client"]
    assert world.sent_secrets() == [CANARY_SECRET, ROTATED_SECRET]
    assert world.sleeps == []


def test_rotated_client_id_also_counts_as_new(clock: ManualClock, creds: Credentials) -> None:
    other = Credentials("client-2", CANARY_SECRET)
    world = driver(clock, [INVALID_CLIENT, ok()], [creds, other])
    assert world.run(flow(clock)).credentials is other


def test_second_rejection_fails_with_actionable_message(
    clock: ManualClock, creds: Credentials
) -> None:
    rotated = Credentials("client-1", ROTATED_SECRET)
    world = driver(clock, [INVALID_CLIENT, INVALID_CLIENT, ok()], [creds, rotated, creds])
    with pytest.raises(InvalidClientError) as info:
        world.run(flow(clock))
    assert world.reads == ["refresh", "invalid_client"]  # exactly one re-read
    assert len(world.sent) == 2
    assert "still serves" in str(info.value)
    assert "Update the client secret" in str(info.value)


def test_rotated_pair_gets_its_try_even_on_a_one_attempt_policy(
    clock: ManualClock, creds: Credentials
) -> None:
    rotated = Credentials("client-1", ROTATED_SECRET)
    world = driver(clock, [INVALID_CLIENT, ok()], [creds, rotated])
    assert world.run(flow(clock, RetryPolicy(max_attempts=1))).credentials is rotated


def test_invalid_client_after_transient_failures(clock: ManualClock, creds: Credentials) -> None:
    rotated = Credentials("client-1", ROTATED_SECRET)
    world = driver(clock, [response(503, {}), INVALID_CLIENT, ok()], [creds, rotated])
    result = world.run(flow(clock))
    assert result.credentials is rotated
    assert world.reads == ["refresh", "invalid_client"]
    assert len(world.sleeps) == 1


def test_invalid_client_when_reread_fails(clock: ManualClock, creds: Credentials) -> None:
    outage = SourceError("vault:secret/n3xt/api is sealed", source="vault")
    world = driver(clock, [INVALID_CLIENT], [creds, outage])
    with pytest.raises(InvalidClientError) as info:
        world.run(flow(clock))
    assert "Re-reading the credential source" in str(info.value)
    assert "sealed" in str(info.value)
    assert info.value.__cause__ is None


def test_outside_text_is_escaped_in_logs_and_errors(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    forged = "client-1\r\n2026-01-01 INFO forged line\x1b[2J"
    creds = Credentials(forged, CANARY_SECRET, source="evil\nsource")
    outage = SourceError("backend said\r\nFORGED", source="vault")
    world = driver(clock, [response(503, {}), INVALID_CLIENT], [creds, outage])
    with (
        caplog.at_level(logging.DEBUG, logger="n3xt_creds"),
        pytest.raises(InvalidClientError) as info,
    ):
        world.run(flow(clock))
    texts = [str(info.value)] + [r.getMessage() for r in caplog.records]
    assert any("client-1\\r\\n2026" in text for text in texts)
    for text in texts:
        assert "\n" not in text and "\r" not in text and "\x1b" not in text, text


# -- the source failing: last-good credentials -----------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        SourceError("vault:secret/n3xt/api: permission denied", source="vault"),
        CredentialsNotFoundError("N3XT_CLIENT_ID is not set", source="env"),
    ],
)
def test_last_good_used_when_source_fails(
    clock: ManualClock,
    creds: Credentials,
    failure: Exception,
    caplog: pytest.LogCaptureFixture,
) -> None:
    world = driver(clock, [ok()], [failure])
    with caplog.at_level(logging.DEBUG, logger="n3xt_creds"):
        result = world.run(flow(clock, last_good=creds))
    assert result.credentials is creds
    assert world.sent_secrets() == [CANARY_SECRET]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("last good credentials" in w and type(failure).__name__ in w for w in warnings)


def test_source_failure_without_last_good_propagates(clock: ManualClock) -> None:
    failure = CredentialsNotFoundError("nothing anywhere", source="chain")
    world = driver(clock, [ok()], [failure])
    with pytest.raises(CredentialsNotFoundError) as info:
        world.run(flow(clock))
    assert info.value is failure
    assert world.sent == []


def test_unexpected_source_exception_propagates_even_with_last_good(
    clock: ManualClock, creds: Credentials
) -> None:
    world = driver(clock, [ok()], [RuntimeError("plugin bug")])
    with pytest.raises(RuntimeError, match="plugin bug"):
        world.run(flow(clock, last_good=creds))


# -- logging ---------------------------------------------------------------------------


def test_logs_started_attempt_failed_and_succeeded(
    clock: ManualClock, creds: Credentials, caplog: pytest.LogCaptureFixture
) -> None:
    world = driver(clock, [response(503, {"request_id": "r-fail"}), ok()], [creds])
    with caplog.at_level(logging.DEBUG, logger="n3xt_creds"):
        world.run(flow(clock))
    messages = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "n3xt_creds"]
    assert messages[0][0] == logging.DEBUG and "started" in messages[0][1]
    failed = [m for level, m in messages if level == logging.WARNING]
    assert len(failed) == 1
    assert "status=503" in failed[0] and "r-fail" in failed[0] and "retryable=True" in failed[0]
    assert "next retry in" in failed[0]
    succeeded = [m for level, m in messages if level == logging.INFO]
    assert len(succeeded) == 1
    assert "req-ok-1" in succeeded[0]
    assert "expires_in=3600" in succeeded[0]
    assert creds.client_secret.fingerprint in succeeded[0]


@pytest.mark.parametrize(
    ("answers", "reads"),
    [
        ([response(400, {"error": "invalid_request"})], 1),
        ([INVALID_CLIENT], 2),
        ([INVALID_CLIENT, INVALID_CLIENT], 2),
        ([response(503, {})] * 2, 1),
    ],
    ids=["final", "same-pair-rejected", "rotated-rejected", "gave-up"],
)
def test_a_failed_refresh_logs_exactly_one_error(
    clock: ManualClock,
    creds: Credentials,
    caplog: pytest.LogCaptureFixture,
    answers: list[TokenResponse],
    reads: int,
) -> None:
    rotated = Credentials("client-1", ROTATED_SECRET)
    credentials = (
        [creds, rotated] if len(answers) == 2 and answers[0] is INVALID_CLIENT else [creds]
    )
    world = driver(clock, answers, credentials)
    with caplog.at_level(logging.DEBUG, logger="n3xt_creds"), pytest.raises(TokenRequestError):
        world.run(flow(clock, RetryPolicy(max_attempts=2)))
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "Token refresh failed after" in errors[0].getMessage()
    assert len(world.reads) == reads


def test_source_failure_without_last_good_is_logged_as_error(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    world = driver(clock, [], [SourceError("vault sealed")])
    with caplog.at_level(logging.DEBUG, logger="n3xt_creds"), pytest.raises(SourceError):
        world.run(flow(clock))
    [error] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "vault sealed" in error.getMessage()


def test_gave_up_is_logged_as_error(
    clock: ManualClock, creds: Credentials, caplog: pytest.LogCaptureFixture
) -> None:
    world = driver(clock, [response(503, {})] * 2, [creds])
    with caplog.at_level(logging.DEBUG, logger="n3xt_creds"), pytest.raises(TokenRequestError):
        world.run(flow(clock, RetryPolicy(max_attempts=2)))
    assert [r.levelno for r in caplog.records].count(logging.ERROR) == 1


# -- the async driver loop -------------------------------------------------------------


async def test_run_async_drives_the_same_flow(clock: ManualClock, creds: Credentials) -> None:
    rotated = Credentials("client-1", ROTATED_SECRET)
    world = driver(clock, [connect_error(), INVALID_CLIENT, ok()], [creds, rotated])

    async def read(action: ReadCredentials) -> Credentials:
        return world.read(action)

    async def send(action: SendTokenRequest) -> TokenResponse:
        await asyncio.sleep(0)
        return world.send(action)

    async def sleep(seconds: float) -> None:
        world.sleep(seconds)

    result = await run_async(flow(clock), read=read, send=send, sleep=sleep)
    assert result.credentials is rotated
    assert world.reads == ["refresh", "invalid_client"]
    assert len(world.sent) == 3


async def test_run_async_cancellation_closes_the_flow(
    clock: ManualClock, creds: Credentials
) -> None:
    gen = flow(clock)
    started = asyncio.Event()

    async def read(action: ReadCredentials) -> Credentials:
        return creds

    async def send(action: SendTokenRequest) -> TokenResponse:
        started.set()
        await asyncio.Event().wait()  # never answers
        raise AssertionError("unreachable")

    async def sleep(seconds: float) -> None:
        raise AssertionError("unreachable")

    task = asyncio.create_task(run_async(gen, read=read, send=send, sleep=sleep))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert gen.gi_frame is None  # closed, not left suspended


def test_sleep_action_is_what_the_driver_sees(clock: ManualClock, creds: Credentials) -> None:
    gen = flow(clock)
    next(gen)
    gen.send(creds)
    action = gen.throw(connect_error())
    assert isinstance(action, Sleep)
    assert 0.0 <= action.seconds <= 0.1
