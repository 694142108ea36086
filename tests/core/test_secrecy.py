"""A canary secret and a canary token, through every flow scenario: found nowhere.

Scanned: every log record at DEBUG (message and arguments), the result's repr, and
the raised exception's str, repr, attributes and formatted traceback, along its
whole cause/context chain. The chain must not hold an httpx exception either: its
``.request`` carries the secret in the body.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable

import httpx
import pytest

from n3xt_creds import Credentials, SourceError
from n3xt_creds._core.flow import RetryPolicy, refresh_flow
from n3xt_creds._core.token import TokenResponse, build_token_request
from tests.core._support import (
    CANARY_SECRET,
    CANARY_TOKEN,
    TOKEN_URL,
    ManualClock,
    ScriptedDriver,
    chained,
    exception_texts,
    log_texts,
    ok,
    response,
    token_body,
)

ROTATED_CANARY = "CANARY-ROTATED-SECRET-55aa"
CREDS = Credentials("client-1", CANARY_SECRET, source="test:canary")
ROTATED = Credentials("client-1", ROTATED_CANARY, source="test:canary")
CANARIES = (CANARY_SECRET, CANARY_TOKEN, ROTATED_CANARY)


def request_with_secret() -> httpx.Request:
    content = build_token_request(TOKEN_URL, CREDS).content
    return httpx.Request("POST", TOKEN_URL, content=content)


def invalid_client() -> TokenResponse:
    body = {"error": "invalid_client", "access_token": CANARY_TOKEN}
    return response(401, body)


Scenario = Callable[[], tuple[list[object], list[object], Credentials | None]]

SCENARIOS: dict[str, Scenario] = {
    "success": lambda: ([ok()], [CREDS], None),
    "transport-errors-until-gave-up": lambda: (
        [
            httpx.ConnectError("refused", request=request_with_secret()),
            httpx.ReadTimeout("timeout", request=request_with_secret()),
            httpx.RemoteProtocolError("closed", request=request_with_secret()),
        ],
        [CREDS],
        None,
    ),
    "rotation-recovers": lambda: ([invalid_client(), ok()], [CREDS, ROTATED], None),
    "rotation-still-rejected": lambda: (
        [invalid_client(), invalid_client()],
        [CREDS, ROTATED],
        None,
    ),
    "same-pair-rejected": lambda: ([invalid_client()], [CREDS, CREDS], None),
    "reread-fails": lambda: ([invalid_client()], [CREDS, SourceError("sealed")], None),
    "bad-token-type-until-gave-up": lambda: ([ok(token_type="mac")] * 3, [CREDS], None),
    "token-in-html-200": lambda: (
        [response(200, raw=b"<p>" + CANARY_TOKEN.encode(), headers={"Content-Type": "text/html"})]
        * 3,
        [CREDS],
        None,
    ),
    "final-400-with-token-in-body": lambda: (
        [response(400, token_body(status_code=400, error="invalid_request"))],
        [CREDS],
        None,
    ),
    "4xx-in-200-body": lambda: ([response(200, token_body(status_code=403))], [CREDS], None),
    "source-down-last-good": lambda: ([ok()], [SourceError("vault sealed")], CREDS),
    "source-down-no-last-good": lambda: ([ok()], [SourceError("vault sealed")], None),
    "retry-after-past-deadline": lambda: (
        [response(429, {}, headers={"Retry-After": "999"})],
        [CREDS],
        None,
    ),
}


@pytest.mark.parametrize("name", SCENARIOS)
def test_canaries_never_leak(name: str, caplog: pytest.LogCaptureFixture) -> None:
    answers, credentials, last_good = SCENARIOS[name]()
    clock = ManualClock()
    world = ScriptedDriver(clock, answers, credentials)  # type: ignore[arg-type]
    flow = refresh_flow(
        token_url=TOKEN_URL,
        refresh_margin=300.0,
        policy=RetryPolicy(max_attempts=3),
        last_good=last_good,
        clock=clock,
        rng=random.Random(0),
    )
    texts: list[str] = []
    raised: Exception | None = None
    with caplog.at_level(logging.DEBUG):
        try:
            result = world.run(flow)
        except Exception as exc:
            raised = exc
        else:
            texts += [repr(result), str(result), repr(result.token), repr(result.credentials)]
    if raised is not None:
        texts.extend(exception_texts(raised))
        assert not any(isinstance(e, httpx.HTTPError) for e in chained(raised))
    texts.extend(log_texts(caplog.records))
    assert caplog.records, "the scenario should have logged something"
    for text in texts:
        for canary in CANARIES:
            assert canary not in text, f"{name}: canary leaked into {text[:200]!r}"


def test_canary_scan_would_catch_a_leak(caplog: pytest.LogCaptureFixture) -> None:
    # The scanners above are only useful if they see what they are given.
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("n3xt_creds").debug("oops %s", CANARY_TOKEN)
    assert any(CANARY_TOKEN in text for text in log_texts(caplog.records))
    with pytest.raises(ValueError, match="outer") as info:
        raise ValueError("outer") from RuntimeError(CANARY_SECRET)
    assert any(CANARY_SECRET in text for text in exception_texts(info.value))
