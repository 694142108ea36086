"""Helpers for the sans-IO core tests: canaries, a fake clock and a scripted driver.

The core does no I/O, so its tests need no server: the "outside world" is a script
of credentials and token answers, played by :class:`ScriptedDriver` through the same
``run_sync`` loop the authenticator uses.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from n3xt_creds import Credentials
from n3xt_creds._core.flow import ReadCredentials, RefreshResult, SendTokenRequest, run_sync
from n3xt_creds._core.token import TokenResponse
from n3xt_creds.testing import ManualClock

CANARY_SECRET = "CANARY-SECRET-7d1f0c9e-never-printed"
CANARY_TOKEN = "CANARY-TOKEN-b3e41a77-never-printed"
TOKEN_URL = "https://authn.example.test/v1/public/project-test/oauth2/token"


def token_body(**overrides: Any) -> dict[str, Any]:
    """A valid N3XT token answer body, with ``overrides`` applied (``None`` deletes a key)."""
    body: dict[str, Any] = {
        "status_code": 200,
        "expires_in": 3600,
        "request_id": "req-ok-1",
        "access_token": CANARY_TOKEN,
        "token_type": "bearer",
    }
    for key, value in overrides.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return body


def response(
    status: int = 200,
    body: Any = None,
    *,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> TokenResponse:
    """A TokenResponse with a JSON ``body`` (or ``raw`` bytes)."""
    if raw is None:
        raw = json.dumps(token_body() if body is None else body).encode()
        headers = {"Content-Type": "application/json", **(headers or {})}
    return TokenResponse(status, headers or {}, raw)


def ok(**overrides: Any) -> TokenResponse:
    """A 200 token answer."""
    return response(200, token_body(**overrides))


@dataclass
class ScriptedDriver:
    """Plays a script: each read pops ``credentials``, each send pops ``answers``.

    An item that is an exception is raised by that action. ``latency`` is added to
    the clock per send; sleeps advance the clock exactly.
    """

    clock: ManualClock
    answers: list[TokenResponse | BaseException]
    credentials: list[Credentials | BaseException]
    latency: float = 0.0
    reads: list[str] = field(default_factory=list)
    sent: list[SendTokenRequest] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)

    def read(self, action: ReadCredentials) -> Credentials:
        self.reads.append(action.reason)
        item = self.credentials.pop(0) if len(self.credentials) > 1 else self.credentials[0]
        if isinstance(item, BaseException):
            raise item
        return item

    def send(self, action: SendTokenRequest) -> TokenResponse:
        self.sent.append(action)
        self.clock.advance(self.latency)
        item = self.answers.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.clock.advance(seconds)

    def run(self, flow: Any) -> RefreshResult:
        return run_sync(flow, read=self.read, send=self.send, sleep=self.sleep)

    def sent_secrets(self) -> list[str]:
        return [json.loads(a.request.content)["client_secret"] for a in self.sent]


def exception_texts(exc: BaseException) -> Iterator[str]:
    """str, repr and formatted traceback of ``exc`` and of every exception chained to it."""
    yield "".join(traceback.format_exception(exc))
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield str(current)
        yield repr(current)
        yield repr(vars(current)) if hasattr(current, "__dict__") else ""
        current = current.__cause__ or current.__context__


def chained(exc: BaseException) -> list[BaseException]:
    """``exc`` and every exception in its cause/context chain."""
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in found:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def log_texts(records: list[logging.LogRecord]) -> Iterator[str]:
    """Every rendered message and every argument repr of ``records``."""
    for record in records:
        yield record.getMessage()
        yield repr(record.args)
        if record.exc_info and record.exc_info[1] is not None:
            yield from exception_texts(record.exc_info[1])
