"""Every injected fault, seen through a real httpx client."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from n3xt_creds.testing import Emulator, Fault
from tests._poll import wait_until

from .conftest import GrantFn, grant_body


@pytest.mark.parametrize(
    ("fault", "status", "error"),
    [
        (Fault.SERVER_ERROR, 500, "server_error"),
        (Fault.UNAVAILABLE, 503, "temporarily_unavailable"),
        (Fault.RATE_LIMITED, 429, "rate_limited"),
    ],
)
def test_json_error_faults(
    n3xt_emulator: Emulator, grant: GrantFn, fault: Fault, status: int, error: str
) -> None:
    creds = n3xt_emulator.add_client()
    n3xt_emulator.inject_fault(fault)

    response = grant(creds)

    assert response.status_code == status
    body = response.json()
    assert body["status_code"] == status
    assert body["error"] == error
    assert body["request_id"] == response.headers["x-request-id"]
    assert n3xt_emulator.counters.token_requests == {fault.value: 1}
    assert grant(creds).status_code == 200  # one fault, one request


def test_rate_limited_sends_retry_after(n3xt_emulator: Emulator, grant: GrantFn) -> None:
    creds = n3xt_emulator.add_client()
    n3xt_emulator.inject_fault(Fault.RATE_LIMITED)
    n3xt_emulator.inject_fault(Fault.RATE_LIMITED, retry_after=7)

    assert grant(creds).headers["retry-after"] == "1"
    assert grant(creds).headers["retry-after"] == "7"


def test_bad_gateway_is_an_html_page(n3xt_emulator: Emulator, grant: GrantFn) -> None:
    creds = n3xt_emulator.add_client()
    n3xt_emulator.inject_fault(Fault.BAD_GATEWAY_HTML)

    response = grant(creds)

    assert response.status_code == 502
    assert response.headers["content-type"] == "text/html"
    assert response.text.startswith("<html>")
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_garbage_200_is_not_json(n3xt_emulator: Emulator, grant: GrantFn) -> None:
    creds = n3xt_emulator.add_client()
    n3xt_emulator.inject_fault(Fault.GARBAGE_200)

    response = grant(creds)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    with pytest.raises(ValueError):
        json.loads(response.content)
    assert n3xt_emulator.tokens_issued == 0


def test_status_500_in_a_200_body(n3xt_emulator: Emulator, grant: GrantFn) -> None:
    creds = n3xt_emulator.add_client()
    n3xt_emulator.inject_fault(Fault.STATUS_500_IN_BODY)

    response = grant(creds)

    assert response.status_code == 200
    body = response.json()
    assert body["status_code"] == 500
    assert body["request_id"] == response.headers["x-request-id"]
    assert "access_token" not in body


def test_reset_breaks_the_connection(n3xt_emulator: Emulator, grant: GrantFn) -> None:
    creds = n3xt_emulator.add_client()
    n3xt_emulator.inject_fault(Fault.RESET)

    with pytest.raises(httpx.ReadError):
        grant(creds)

    assert n3xt_emulator.counters.token_requests == {"reset": 1}
    assert grant(creds).status_code == 200  # the client opens a new connection


def test_hang_outlasts_the_client_timeout(n3xt_emulator: Emulator, grant: GrantFn) -> None:
    creds = n3xt_emulator.add_client()
    n3xt_emulator.inject_fault(Fault.HANG)

    with pytest.raises(httpx.ReadTimeout):
        grant(creds, timeout=0.3)

    assert n3xt_emulator.counters.token_requests == {"hang": 1}
    # The emulator notices the client hung up and frees the request.
    wait_until(lambda: n3xt_emulator.counters.in_flight == 0)
    assert grant(creds).status_code == 200


def test_hang_is_bounded_by_hang_timeout(http: httpx.Client) -> None:
    with Emulator(hang_timeout=0.2) as em:
        creds = em.add_client()
        em.inject_fault(Fault.HANG)

        # The client waits longer than hang_timeout: the server drops the connection.
        with pytest.raises(httpx.RemoteProtocolError):
            http.post(em.token_url(), json=grant_body(creds), timeout=5)


def test_stop_returns_promptly_with_a_hanging_request(http: httpx.Client) -> None:
    em = Emulator().start()
    creds = em.add_client()
    em.inject_fault(Fault.HANG)
    errors: list[Exception] = []

    def hang() -> None:
        try:
            http.post(em.token_url(), json=grant_body(creds), timeout=20)
        except httpx.TransportError as exc:
            errors.append(exc)

    thread = threading.Thread(target=hang)
    thread.start()
    try:
        wait_until(lambda: em.counters.in_flight == 1)
        started = time.monotonic()
        em.stop()
        stop_seconds = time.monotonic() - started
    finally:
        em.stop()
        thread.join(timeout=10)

    assert not thread.is_alive()
    assert stop_seconds < 3  # generous: it takes milliseconds, not the 30 s hang bound
    assert len(errors) == 1


def test_faults_are_consumed_in_order(n3xt_emulator: Emulator, grant: GrantFn) -> None:
    creds = n3xt_emulator.add_client()
    n3xt_emulator.inject_fault(Fault.SERVER_ERROR, count=2)
    n3xt_emulator.inject_fault(Fault.UNAVAILABLE)
    assert n3xt_emulator.pending_faults == [
        Fault.SERVER_ERROR,
        Fault.SERVER_ERROR,
        Fault.UNAVAILABLE,
    ]

    statuses = [grant(creds).status_code for _ in range(4)]

    assert statuses == [500, 500, 503, 200]
    assert n3xt_emulator.pending_faults == []
    assert n3xt_emulator.counters.token_requests == {
        "server_error": 2,
        "unavailable": 1,
        "success": 1,
    }


def test_faults_hit_only_token_requests(
    n3xt_emulator: Emulator, grant: GrantFn, http: httpx.Client
) -> None:
    token = grant(n3xt_emulator.add_client()).json()["access_token"]
    n3xt_emulator.inject_fault(Fault.SERVER_ERROR)

    api = http.get(n3xt_emulator.api_url(), headers={"Authorization": f"Bearer {token}"})

    assert api.status_code == 200
    assert n3xt_emulator.pending_faults == [Fault.SERVER_ERROR]


def test_faults_accept_their_string_values(n3xt_emulator: Emulator, grant: GrantFn) -> None:
    n3xt_emulator.inject_fault("unavailable")  # type: ignore[arg-type]
    assert grant(n3xt_emulator.add_client()).status_code == 503


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [(("no_such_fault",), {}), ((Fault.HANG, 0), {}), ((Fault.RATE_LIMITED,), {"retry_after": -1})],
)
def test_inject_fault_validates(
    n3xt_emulator: Emulator, args: tuple[object, ...], kwargs: dict[str, int]
) -> None:
    with pytest.raises(ValueError):
        n3xt_emulator.inject_fault(*args, **kwargs)  # type: ignore[arg-type]
    assert n3xt_emulator.pending_faults == []
