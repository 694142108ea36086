"""Every control of the emulator, driven through a real httpx client."""

from __future__ import annotations

import logging
import threading
import time

import httpx
import pytest

from n3xt_creds import Secret
from n3xt_creds.testing import Counters, Emulator, ManualClock
from tests._poll import wait_until

from .conftest import GrantFn, grant_body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_add_client_generates_a_pair(n3xt_emulator: Emulator, grant: GrantFn) -> None:
    first, second = n3xt_emulator.add_client(), n3xt_emulator.add_client()

    assert first.client_id != second.client_id
    assert first.client_secret != second.client_secret
    assert len(first.client_secret) >= 32
    assert n3xt_emulator.client_ids == [first.client_id, second.client_id]
    assert grant(first).status_code == 200


def test_add_client_with_given_pair(n3xt_emulator: Emulator, grant: GrantFn) -> None:
    creds = n3xt_emulator.add_client("my-app", Secret("s3cret-value"))
    assert creds.client_id == "my-app"
    assert creds.client_secret.get_secret_value() == "s3cret-value"
    assert creds.source == "emulator"
    assert grant(creds).status_code == 200


def test_add_client_refuses_a_duplicate_id(n3xt_emulator: Emulator) -> None:
    n3xt_emulator.add_client("my-app")
    with pytest.raises(ValueError, match="rotate_client"):
        n3xt_emulator.add_client("my-app")


@pytest.mark.parametrize(("client_id", "secret"), [("", "x"), ("id", "")])
def test_add_client_refuses_empty_values(
    n3xt_emulator: Emulator, client_id: str, secret: str
) -> None:
    with pytest.raises(ValueError, match="non-empty"):
        n3xt_emulator.add_client(client_id, secret)


def test_rotate_client_rejects_the_old_secret(
    n3xt_emulator: Emulator, grant: GrantFn, http: httpx.Client
) -> None:
    old = n3xt_emulator.add_client()
    token = grant(old).json()["access_token"]

    new = n3xt_emulator.rotate_client(old.client_id)

    assert new.client_id == old.client_id
    assert new.client_secret != old.client_secret
    assert grant(old).status_code == 401
    assert grant(new).status_code == 200
    # Tokens issued before the rotation stay valid until they expire.
    assert http.get(n3xt_emulator.api_url(), headers=bearer(token)).status_code == 200


def test_rotate_client_to_a_given_secret(n3xt_emulator: Emulator, grant: GrantFn) -> None:
    creds = n3xt_emulator.add_client("app")
    rotated = n3xt_emulator.rotate_client("app", "brand-new-secret")
    assert rotated.client_secret.get_secret_value() == "brand-new-secret"
    assert grant(rotated).status_code == 200
    assert grant(creds).status_code == 401


def test_rotate_or_remove_unknown_client_names_it(n3xt_emulator: Emulator) -> None:
    n3xt_emulator.add_client("known")
    with pytest.raises(LookupError, match="'ghost'.*'known'"):
        n3xt_emulator.rotate_client("ghost")
    with pytest.raises(LookupError, match="'ghost'"):
        n3xt_emulator.remove_client("ghost")


def test_remove_client_rejects_it_and_revokes_its_tokens(
    n3xt_emulator: Emulator, grant: GrantFn, http: httpx.Client
) -> None:
    creds, other = n3xt_emulator.add_client(), n3xt_emulator.add_client()
    token, other_token = grant(creds).json()["access_token"], grant(other).json()["access_token"]

    n3xt_emulator.remove_client(creds.client_id)

    assert grant(creds).status_code == 401
    assert http.get(n3xt_emulator.api_url(), headers=bearer(token)).status_code == 401
    assert http.get(n3xt_emulator.api_url(), headers=bearer(other_token)).status_code == 200
    assert n3xt_emulator.client_ids == [other.client_id]


def test_expires_in_applies_to_new_tokens(n3xt_emulator: Emulator, grant: GrantFn) -> None:
    creds = n3xt_emulator.add_client()
    n3xt_emulator.expires_in = 2
    assert grant(creds).json()["expires_in"] == 2
    n3xt_emulator.expires_in = 0
    assert grant(creds).json()["expires_in"] == 0


@pytest.mark.parametrize("value", [-1, 1.5, "60", True])
def test_expires_in_refuses_bad_values(n3xt_emulator: Emulator, value: object) -> None:
    with pytest.raises(ValueError, match="expires_in"):
        n3xt_emulator.expires_in = value  # type: ignore[assignment]


def test_tokens_expire_on_the_injected_clock(http: httpx.Client) -> None:
    clock = ManualClock()
    with Emulator(expires_in=60, clock=clock) as em:
        creds = em.add_client()
        token = http.post(em.token_url(), json=grant_body(creds)).json()["access_token"]

        clock.now += 59.9
        assert http.get(em.api_url(), headers=bearer(token)).status_code == 200
        clock.now += 0.1
        response = http.get(em.api_url(), headers=bearer(token))

        assert response.status_code == 401
        assert "expired" in response.headers["www-authenticate"]
        assert em.counters.api_calls == {"ok": 1, "expired_token": 1}


def test_expire_tokens(n3xt_emulator: Emulator, grant: GrantFn, http: httpx.Client) -> None:
    creds = n3xt_emulator.add_client()
    tokens = [grant(creds).json()["access_token"] for _ in range(3)]

    assert n3xt_emulator.expire_tokens() == 3
    assert n3xt_emulator.expire_tokens() == 0

    for token in tokens:
        assert http.get(n3xt_emulator.api_url(), headers=bearer(token)).status_code == 401
    assert n3xt_emulator.counters.api_calls == {"expired_token": 3}
    fresh = grant(creds).json()["access_token"]
    assert http.get(n3xt_emulator.api_url(), headers=bearer(fresh)).status_code == 200


def test_revoke_token(n3xt_emulator: Emulator, grant: GrantFn, http: httpx.Client) -> None:
    creds = n3xt_emulator.add_client()
    token, other = grant(creds).json()["access_token"], grant(creds).json()["access_token"]

    assert n3xt_emulator.revoke_token(token) is True
    assert n3xt_emulator.revoke_token(token) is False
    assert n3xt_emulator.revoke_token("never-issued") is False

    response = http.get(n3xt_emulator.api_url(), headers=bearer(token))
    assert response.status_code == 401
    assert "revoked" in response.headers["www-authenticate"]
    assert http.get(n3xt_emulator.api_url(), headers=bearer(other)).status_code == 200


def test_revoke_tokens_all_or_per_client(
    n3xt_emulator: Emulator, grant: GrantFn, http: httpx.Client
) -> None:
    a, b = n3xt_emulator.add_client(), n3xt_emulator.add_client()
    a_tokens = [grant(a).json()["access_token"] for _ in range(2)]
    b_token = grant(b).json()["access_token"]

    assert n3xt_emulator.revoke_tokens(a.client_id) == 2
    assert http.get(n3xt_emulator.api_url(), headers=bearer(a_tokens[0])).status_code == 401
    assert http.get(n3xt_emulator.api_url(), headers=bearer(b_token)).status_code == 200

    assert n3xt_emulator.revoke_tokens() == 1
    assert http.get(n3xt_emulator.api_url(), headers=bearer(b_token)).status_code == 401
    assert n3xt_emulator.counters.api_calls == {"ok": 1, "revoked_token": 2}


def test_latency_delays_token_answers(n3xt_emulator: Emulator, grant: GrantFn) -> None:
    creds = n3xt_emulator.add_client()
    n3xt_emulator.latency = 0.3

    started = time.monotonic()
    assert grant(creds).status_code == 200
    assert time.monotonic() - started >= 0.3

    n3xt_emulator.latency = 0
    started = time.monotonic()
    grant(creds)
    assert time.monotonic() - started < 0.3


@pytest.mark.parametrize("value", [-0.1, 4000, "1"])
def test_latency_refuses_bad_values(n3xt_emulator: Emulator, value: object) -> None:
    with pytest.raises(ValueError, match="latency"):
        n3xt_emulator.latency = value  # type: ignore[assignment]


def test_pause_holds_answers_until_resume(n3xt_emulator: Emulator, grant: GrantFn) -> None:
    creds = n3xt_emulator.add_client()
    n3xt_emulator.pause()
    statuses: list[int] = []

    def call() -> None:
        statuses.append(grant(creds).status_code)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    wait_until(lambda: n3xt_emulator.counters.in_flight == 3)
    assert statuses == []

    n3xt_emulator.resume()
    for thread in threads:
        thread.join(timeout=5)

    assert statuses == [200, 200, 200]
    assert n3xt_emulator.counters.max_in_flight == 3
    assert n3xt_emulator.counters.in_flight == 0


def test_counters_count_token_requests_and_api_calls(
    n3xt_emulator: Emulator, grant: GrantFn, http: httpx.Client
) -> None:
    creds = n3xt_emulator.add_client()
    token = grant(creds).json()["access_token"]
    grant(creds)
    http.post(n3xt_emulator.token_url(), json={"client_id": "x"})
    http.get(n3xt_emulator.api_url(), headers=bearer(token))
    http.get(n3xt_emulator.api_url())

    counters = n3xt_emulator.counters
    assert counters.token_requests == {"success": 2, "invalid_request": 1}
    assert counters.token_requests_total == 3
    assert counters.api_calls == {"ok": 1, "missing_token": 1}
    assert counters.api_calls_total == 2
    assert counters.max_in_flight == 1
    assert counters.in_flight == 0


def test_counters_are_a_snapshot(n3xt_emulator: Emulator, grant: GrantFn) -> None:
    before = n3xt_emulator.counters
    grant(n3xt_emulator.add_client())
    assert before.token_requests_total == 0
    assert n3xt_emulator.counters.token_requests_total == 1


def test_reset_restores_defaults(
    n3xt_emulator: Emulator, grant: GrantFn, http: httpx.Client
) -> None:
    from n3xt_creds.testing import Fault

    creds = n3xt_emulator.add_client()
    token = grant(creds).json()["access_token"]
    n3xt_emulator.expires_in, n3xt_emulator.latency = 5, 0.5
    n3xt_emulator.inject_fault(Fault.SERVER_ERROR)
    n3xt_emulator.pause()
    url = n3xt_emulator.url

    n3xt_emulator.reset()

    assert n3xt_emulator.url == url
    assert n3xt_emulator.client_ids == []
    assert n3xt_emulator.pending_faults == []
    assert (n3xt_emulator.expires_in, n3xt_emulator.latency) == (3600, 0.0)
    assert n3xt_emulator.counters.token_requests_total == 0
    assert n3xt_emulator.tokens_issued == 0
    assert grant(creds).status_code == 401  # the client is gone, and nothing is paused
    assert http.get(n3xt_emulator.api_url(), headers=bearer(token)).status_code == 401


def test_requests_from_before_a_reset_are_not_counted_after_it(
    n3xt_emulator: Emulator, grant: GrantFn
) -> None:
    creds = n3xt_emulator.add_client()
    n3xt_emulator.pause()
    statuses: list[int] = []
    thread = threading.Thread(target=lambda: statuses.append(grant(creds).status_code))
    thread.start()
    wait_until(lambda: n3xt_emulator.counters.in_flight == 1)

    n3xt_emulator.reset()  # releases the held request; its client no longer exists
    thread.join(timeout=5)

    assert statuses == [401]
    assert n3xt_emulator.counters == Counters()
    assert grant(n3xt_emulator.add_client()).status_code == 200
    assert n3xt_emulator.counters.token_requests == {"success": 1}
    assert n3xt_emulator.counters.in_flight == 0


def test_reset_restores_the_constructor_settings(http: httpx.Client) -> None:
    with Emulator(expires_in=30, latency=0.01) as em:
        em.expires_in, em.latency = 1, 0
        em.reset()
        assert (em.expires_in, em.latency) == (30, 0.01)


def test_controls_are_thread_safe(n3xt_emulator: Emulator) -> None:
    def add_many() -> None:
        for _ in range(200):
            n3xt_emulator.add_client()

    threads = [threading.Thread(target=add_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(set(n3xt_emulator.client_ids)) == 800


def test_lifecycle(http: httpx.Client) -> None:
    em = Emulator()
    assert "stopped" in repr(em)
    with pytest.raises(RuntimeError, match="not running"):
        _ = em.url
    em.start()
    try:
        with pytest.raises(RuntimeError, match="already running"):
            em.start()
        assert em.url.startswith("http://127.0.0.1:")
        em_port = em.url.rsplit(":", 1)[1]
        assert em.token_url("p1") == f"{em.url}/v1/public/p1/oauth2/token"
        assert em.api_url("v2/x") == f"{em.url}/api/v2/x"
        assert http.get(em.api_url()).status_code == 401
    finally:
        em.stop()
    em.stop()  # idempotent
    assert not em.running
    serving = [t for t in threading.enumerate() if t.name.startswith("n3xt-emulator:")]
    assert all(not t.name.endswith(f":{em_port}") for t in serving)
    with pytest.raises(httpx.ConnectError):
        http.get(f"http://127.0.0.1:{em_port}/")  # the port is closed


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"project": "a/b"}, "project"),
        ({"hang_timeout": 0}, "hang_timeout"),
        ({"expires_in": -5}, "expires_in"),
    ],
)
def test_constructor_validates(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Emulator(**kwargs)  # type: ignore[arg-type]


def test_no_secret_or_token_in_repr_or_logs(
    n3xt_emulator: Emulator, grant: GrantFn, http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="n3xt_creds.testing")
    secret = "canary-secret-5f0c1e"
    creds = n3xt_emulator.add_client("canary-app", secret)
    token = grant(creds).json()["access_token"]
    http.get(n3xt_emulator.api_url(f"/x?access_token={token}"), headers=bearer(token))
    http.post(f"{n3xt_emulator.token_url()}?client_secret={secret}", json={})

    # Only the emulator's own log lines: httpx logs the URLs it was asked to fetch.
    logs = "\n".join(r.getMessage() for r in caplog.records if r.name == "n3xt_creds.testing")
    shown = f"{n3xt_emulator!r} {creds!r} {n3xt_emulator.counters!r} {logs}"
    assert "canary-app" in repr(creds)
    assert "/api/x" in logs  # the access log went through logging at DEBUG
    # Plain booleans, so a failure does not print the values it looked for.
    assert (secret in shown) is False
    assert (token in shown) is False
