"""VaultSource under the Authenticator: rotation, Vault outages, and how often Vault is read.

Real OpenBao, the N3XT emulator and the real Authenticator over httpx. The
authenticator's clock is injected so several token lifetimes pass in one test
without sleeping; the emulator and Vault keep real time (their tokens stay valid).
"""

from __future__ import annotations

import httpx
import pytest

from n3xt_creds import Authenticator, RetryPolicy
from n3xt_creds.sources.vault import VaultAppRoleAuth, VaultTokenAuth
from n3xt_creds.testing import ManualClock
from tests.sources.vault._support import RequestLog

pytestmark = pytest.mark.vault


def call_api(client: httpx.Client, url: str, times: int) -> list[int]:
    return [client.get(url).status_code for _ in range(times)]


def test_secret_rotated_mid_run_recovers_through_invalid_client_with_no_failed_call(
    make_source, vault, n3xt_emulator, request_log
) -> None:
    """N3XT starts rejecting the old secret; Vault gets the new one just after we read it."""
    old = n3xt_emulator.add_client()
    path = vault.new_path()
    secret = {"client_id": old.client_id, "client_secret": old.client_secret.get_secret_value()}
    vault.put(path, secret)
    source = make_source(
        vault.url, path=path, auth=VaultTokenAuth(vault.root_token), session=request_log.session
    )
    api = n3xt_emulator.api_url()
    with (
        Authenticator(source, token_url=n3xt_emulator.token_url()) as auth,
        httpx.Client(auth=auth) as client,
    ):
        statuses = call_api(client, api, 20)

        new = n3xt_emulator.rotate_client(old.client_id)
        new_secret = {
            "client_id": new.client_id,
            "client_secret": new.client_secret.get_secret_value(),
        }
        rotated_in_vault: list[bool] = []

        def rotate_vault_after_our_next_read(response, *args, **kwargs):
            if not rotated_in_vault and f"/secret/data/{path}" in response.request.url:
                rotated_in_vault.append(True)
                vault.put(path, new_secret)  # root client, its own session: no recursion

        request_log.session.hooks["response"].append(rotate_vault_after_our_next_read)
        reads_before = request_log.count(f"/v1/secret/data/{path}")
        n3xt_emulator.revoke_tokens()  # the next call gets a 401 and forces a refresh
        statuses += call_api(client, api, 20)

    assert rotated_in_vault == [True]
    assert statuses == [200] * 40
    # One read for the refresh (old secret: invalid_client), one re-read (new secret).
    assert request_log.count(f"/v1/secret/data/{path}") - reads_before == 2
    assert n3xt_emulator.counters.token_requests.get("invalid_client", 0) >= 1


def test_vault_outage_at_refresh_time_causes_no_failed_call(
    make_source, fresh_bao, n3xt_emulator, request_log
) -> None:
    """Sealed Vault while the N3XT token is still valid, then once it has expired."""
    server = fresh_bao()
    pair = n3xt_emulator.add_client()
    server.root().secrets.kv.v2.create_or_update_secret(
        path="n3xt/api",
        secret={
            "client_id": pair.client_id,
            "client_secret": pair.client_secret.get_secret_value(),
        },
    )
    source = make_source(
        server.url,
        auth=VaultTokenAuth(server.root_token),
        retry=RetryPolicy(max_attempts=2, base_delay=0.01),
        session=request_log.session,
    )
    clock = ManualClock()
    api = n3xt_emulator.api_url()
    with (
        Authenticator(source, token_url=n3xt_emulator.token_url(), clock=clock) as auth,
        httpx.Client(auth=auth) as client,
    ):
        statuses = call_api(client, api, 5)
        server.root().sys.seal()
        clock.advance(3400)  # stale: a refresh is due, the token is still valid
        statuses += call_api(client, api, 5)
        clock.advance(400)  # expired by the authenticator's clock: it must refresh now
        statuses += call_api(client, api, 5)
    assert statuses == [200] * 15
    sealed_reads = [status for _, p, status in request_log.calls if p.endswith("/n3xt/api")]
    assert 503 in sealed_reads  # Vault really was asked, and really was sealed
    assert n3xt_emulator.counters.token_requests_total >= 2  # last-good credentials were used


def test_vault_is_read_once_per_token_refresh_over_1000_calls(
    make_source, vault, n3xt_emulator
) -> None:
    pair = n3xt_emulator.add_client()
    path = vault.new_path()
    vault.put(
        path, {"client_id": pair.client_id, "client_secret": pair.client_secret.get_secret_value()}
    )
    role_id, secret_id = vault.approle()
    log = RequestLog()
    source = make_source(
        vault.url,
        path=path,
        auth=VaultAppRoleAuth(role_id),
        environ={"VAULT_SECRET_ID": secret_id},
        session=log.session,
    )
    clock = ManualClock()
    api = n3xt_emulator.api_url()
    statuses: list[int] = []
    try:
        with (
            Authenticator(source, token_url=n3xt_emulator.token_url(), clock=clock) as auth,
            httpx.Client(auth=auth) as client,
        ):
            for _ in range(10):
                statuses += call_api(client, api, 100)
                clock.advance(3600)  # the cached N3XT token has expired: next call refreshes
    finally:
        log.close()
    refreshes = auth.stats.refreshes
    vault_reads = log.count(f"/v1/secret/data/{path}")
    print(
        f"1000 API calls: {refreshes} token refreshes, {vault_reads} Vault reads, "
        f"{log.count('/login')} Vault logins, {len(log.calls)} Vault requests in all"
    )
    assert statuses == [200] * 1000
    assert refreshes == 10
    assert vault_reads == refreshes  # never per API call
    assert log.count("/v1/auth/approle/login") == 1
    assert len(log.calls) == vault_reads + 1
