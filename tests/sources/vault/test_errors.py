"""Every Vault failure row of issue #4, each with its own behaviour.

Against the real OpenBao server: 403, sealed (503), 429 with Retry-After (a real
rate-limit quota), TLS. A local stub server is used only where OpenBao cannot
answer that way on demand: other 5xx answers and a standby node's redirect to
another address (plus a recorder on a second port that must never see the token).
"""

from __future__ import annotations

import logging

import pytest

from n3xt_creds import RetryPolicy, SourceError
from n3xt_creds.sources.vault import VaultAppRoleAuth, VaultTokenAuth
from tests.sources.vault._support import (
    RecordingSleep,
    StubServer,
    assert_no_secret,
    free_port,
    kv2_body,
)

pytestmark = pytest.mark.vault

PAIR = {"client_id": "client-abc", "client_secret": "s3cr3t-value-xyz"}


def test_permission_denied_names_path_and_policy_without_retrying(
    make_source, vault, request_log
) -> None:
    token = vault.limited_token()
    sleep = RecordingSleep()
    source = make_source(
        vault.url,
        path="n3xt/api",
        auth=VaultTokenAuth(token),
        session=request_log.session,
        sleep=sleep,
    )
    with pytest.raises(SourceError) as info:
        source.get_credentials()
    message = str(info.value)
    assert "secret/n3xt/api: permission denied (403)" in message
    assert 'path "secret/data/n3xt/api" { capabilities = ["read"] }' in message
    assert "expired or was revoked" in message
    assert info.value.retryable is False
    assert request_log.count("/v1/secret/data/n3xt/api") == 1
    assert sleep.delays == []
    assert_no_secret(message + repr(source), token)


def test_permission_denied_after_login_tries_one_fresh_login_only(
    make_source, vault, request_log
) -> None:
    role_id, secret_id = vault.approle("denied")
    source = make_source(
        vault.url,
        path="n3xt/api",
        auth=VaultAppRoleAuth(role_id),
        environ={"VAULT_SECRET_ID": secret_id},
        session=request_log.session,
    )
    with pytest.raises(
        SourceError,
        match=r"permission denied \(403\)\. Either the path is wrong .* or the approle token's policy",
    ) as info:
        source.get_credentials()
    assert request_log.count("/v1/auth/approle/login") == 2
    assert request_log.count("/v1/secret/data/n3xt/api") == 2
    assert_no_secret(str(info.value), secret_id)


def test_sealed_vault_is_retried_with_backoff_then_retryable_source_error(
    make_source, fresh_bao, request_log
) -> None:
    server = fresh_bao()
    server.root().secrets.kv.v2.create_or_update_secret(path="n3xt/api", secret=PAIR)
    server.root().sys.seal()
    sleep = RecordingSleep()
    source = make_source(
        server.url,
        auth=VaultTokenAuth(server.root_token),
        retry=RetryPolicy(max_attempts=4, base_delay=0.5, max_delay=2.0),
        sleep=sleep,
        session=request_log.session,
    )
    with pytest.raises(
        SourceError, match=r"Vault is sealed \(503\) — still sealed after 4 attempts"
    ) as info:
        source.get_credentials()
    assert info.value.retryable is True
    assert request_log.calls == [("GET", "/v1/secret/data/n3xt/api", 503)] * 4
    assert len(sleep.delays) == 3
    assert all(0 <= d <= cap for d, cap in zip(sleep.delays, (0.5, 1.0, 2.0), strict=True))
    assert_no_secret(str(info.value), server.root_token)

    # Unsealed during the backoff: the next attempt succeeds.
    sleep = RecordingSleep(on_sleep=lambda: server.root().sys.submit_unseal_key(server.unseal_key))
    source = make_source(server.url, auth=VaultTokenAuth(server.root_token), sleep=sleep)
    assert source.get_credentials().client_id == "client-abc"
    assert len(sleep.delays) == 1


def test_other_5xx_answers_are_retried_then_succeed(make_source) -> None:
    """OpenBao cannot be made to answer 502 on demand: a stub plays a proxy in front."""
    answers = iter([(502, {"Content-Type": "text/html"}, b"<html>Bad Gateway</html>")] * 2)

    def respond(method, path, headers):
        return next(answers, (200, {"Content-Type": "application/json"}, kv2_body(PAIR)))

    with StubServer(respond) as stub:
        sleep = RecordingSleep()
        source = make_source(stub.url, auth=VaultTokenAuth("stub-token"), sleep=sleep, environ={})
        assert source.get_credentials().client_id == "client-abc"
    assert len(stub.requests) == 3
    assert len(sleep.delays) == 2


def test_persistent_5xx_gives_a_retryable_source_error_after_bounded_attempts(make_source) -> None:
    def respond(method, path, headers):
        return 500, {"Content-Type": "application/json"}, b'{"errors":["internal error"]}'

    with StubServer(respond) as stub:
        sleep = RecordingSleep()
        source = make_source(
            stub.url,
            auth=VaultTokenAuth("stub-token"),
            retry=RetryPolicy(max_attempts=3),
            sleep=sleep,
            environ={},
        )
        with pytest.raises(
            SourceError, match=r"Vault answered 500 \(internal error\) 3 times"
        ) as info:
            source.get_credentials()
    assert info.value.retryable is True
    assert len(stub.requests) == 3


def test_rate_limited_read_honours_retry_after(make_source, vault, request_log) -> None:
    """A real rate-limit quota (1 request/s) answers 429 with Retry-After: 1."""
    path = "ratelimited/api"
    vault.put(path, PAIR)
    sleep = RecordingSleep(real=True)
    source = make_source(
        vault.url,
        path=path,
        auth=VaultTokenAuth(vault.root_token),
        sleep=sleep,
        session=request_log.session,
    )
    for _ in range(2):  # the second read within the same second meets the quota
        assert source.get_credentials().client_id == "client-abc"
    statuses = [status for _, _, status in request_log.calls]
    assert 429 in statuses
    assert statuses[-1] == 200
    assert sleep.delays
    assert all(0 < delay <= 1.0 for delay in sleep.delays)  # Retry-After, not our backoff


def test_retry_after_longer_than_the_budget_gives_up_at_once(make_source, vault) -> None:
    path = "blocked/api"
    vault.put(path, PAIR)
    sleep = RecordingSleep()
    source = make_source(vault.url, path=path, auth=VaultTokenAuth(vault.root_token), sleep=sleep)
    outcomes = []
    for _ in range(3):  # the write above used the minute's only request
        try:
            source.get_credentials()
        except SourceError as exc:
            outcomes.append(exc)
    assert len(outcomes) == 3
    info = outcomes[-1]
    assert "rate-limiting requests (429, Retry-After" in str(info)
    assert info.retryable is True
    assert sleep.delays == []


def test_unreachable_vault_gives_up_after_bounded_retries(make_source, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    sleep = RecordingSleep()
    url = f"http://127.0.0.1:{free_port()}"
    source = make_source(
        url, auth=VaultTokenAuth("hvs.unreachable-token"), retry=RetryPolicy(3), sleep=sleep
    )
    with pytest.raises(
        SourceError, match=r"Vault is unreachable \(ConnectionError\) after 3 attempts"
    ) as info:
        source.get_credentials()
    assert info.value.retryable is True
    assert url in str(info.value)
    assert len(sleep.delays) == 2
    assert info.value.__cause__ is None and info.value.__context__ is None
    assert_no_secret(str(info.value) + caplog.text, "hvs.unreachable-token")


def test_redirect_to_another_origin_never_carries_the_vault_token(make_source) -> None:
    """A standby node answers 307 to the active node; the token must not follow."""

    def record(method, path, headers):
        return 200, {"Content-Type": "application/json"}, kv2_body(PAIR)

    with StubServer(record) as other_origin:

        def redirect(method, path, headers):
            return 307, {"Location": f"{other_origin.url}{path}"}, b""

        with StubServer(redirect) as standby:
            source = make_source(standby.url, auth=VaultTokenAuth("hvs.standby-token"), environ={})
            with pytest.raises(
                SourceError, match="redirected the read of secret/n3xt/api to another address"
            ) as info:
                source.get_credentials()
    assert standby.requests[0][2]["X-Vault-Token"] == "hvs.standby-token"
    assert other_origin.requests == []
    assert info.value.retryable is False
    assert_no_secret(str(info.value), "hvs.standby-token")


def test_redirect_within_the_same_origin_is_followed(make_source) -> None:
    def respond(method, path, headers):
        if path.startswith("/v1/"):
            return 307, {"Location": "/moved" + path}, b""
        return 200, {"Content-Type": "application/json"}, kv2_body(PAIR)

    with StubServer(respond) as stub:
        source = make_source(stub.url, auth=VaultTokenAuth("hvs.same-origin"), environ={})
        assert source.get_credentials().client_id == "client-abc"
    assert [path for _, path, _ in stub.requests] == [
        "/v1/secret/data/n3xt/api",
        "/moved/v1/secret/data/n3xt/api",
    ]
    assert stub.requests[1][2]["X-Vault-Token"] == "hvs.same-origin"


def test_tls_with_vault_cacert(make_source, fresh_bao) -> None:
    server = fresh_bao(tls=True)
    server.root().secrets.kv.v2.create_or_update_secret(path="n3xt/api", secret=PAIR)
    trusted = make_source(
        environ={
            "VAULT_ADDR": server.url,
            "VAULT_CACERT": server.ca_cert,
            "VAULT_TOKEN": server.root_token,
        }
    )
    assert trusted.get_credentials().client_id == "client-abc"
    untrusted = make_source(server.url, auth=VaultTokenAuth(server.root_token), environ={})
    with pytest.raises(
        SourceError, match="TLS handshake with .* failed .* set ca_cert / VAULT_CACERT"
    ):
        untrusted.get_credentials()


@pytest.mark.parametrize(
    ("status", "hint"),
    [(400, "check kv_version"), (407, "a proxy in front of Vault"), (418, "audit log")],
)
def test_other_refusals_of_the_read_each_say_where_to_look(make_source, status, hint) -> None:
    def respond(method, path, headers):
        return status, {"Content-Type": "application/json"}, b'{"errors":["refused"]}'

    with StubServer(respond) as stub:
        source = make_source(stub.url, auth=VaultTokenAuth("stub-token"), environ={})
        with pytest.raises(SourceError, match=f"Vault answered {status} \\(refused\\); .*{hint}"):
            source.get_credentials()
