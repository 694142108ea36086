"""The AWS source under the Authenticator: rotation, outages, and how often it reads.

Secrets live in moto's server and are read through the fault proxy, which records
every GetSecretValue on the wire; tokens come from the N3XT emulator.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from n3xt_creds import Authenticator, AwsSecretsManagerSource, Credentials, RetryPolicy

pytestmark = pytest.mark.aws


def _store(sm: Any, credentials: Credentials, **kwargs: Any) -> str:
    """Store ``credentials`` as a new version of n3xt/api; return its VersionId."""
    value = json.dumps(
        {
            "client_id": credentials.client_id,
            "client_secret": credentials.client_secret.get_secret_value(),
        }
    )
    answer = sm.put_secret_value(SecretId="n3xt/api", SecretString=value, **kwargs)
    return str(answer["VersionId"])


class _RotateAfterNextRead:
    """A source that lets a rotation finish right after the authenticator read it.

    This is the race rotation creates in production: the authenticator reads AWSCURRENT,
    the rotation function then moves AWSCURRENT to the new version and N3XT starts
    rejecting the old secret, and the token request with the old secret gets
    ``invalid_client``. Only the timing is staged here; the reads are real.
    """

    def __init__(self, source: AwsSecretsManagerSource, rotate: Any) -> None:
        self._source = source
        self._rotate = rotate
        self.armed = False

    def get_credentials(self) -> Credentials:
        credentials = self._source.get_credentials()
        if self.armed:
            self.armed = False
            self._rotate()
        return credentials


@pytest.fixture
def first(n3xt_emulator: Any, sm: Any) -> Credentials:
    """A client registered at the emulator and stored as n3xt/api's AWSCURRENT."""
    credentials: Credentials = n3xt_emulator.add_client()
    sm.create_secret(Name="n3xt/api", SecretString="{}")
    _store(sm, credentials)
    return credentials


@pytest.fixture
def api(n3xt_emulator: Any) -> Iterator[Any]:
    """``api(auth, n)``: make ``n`` calls to the emulator's API; return the status codes."""
    clients: list[httpx.Client] = []

    def call(auth: Authenticator, n: int = 1) -> list[int]:
        client = httpx.Client(auth=auth, timeout=10)
        clients.append(client)
        return [client.get(n3xt_emulator.api_url()).status_code for _ in range(n)]

    yield call
    for client in clients:
        client.close()


def test_rotation_mid_run_recovers_through_invalid_client_with_no_failed_call(
    n3xt_emulator, sm, make_source, fault_proxy, first, api
) -> None:
    """Rotation lands between our read and our token request: one invalid_client, zero failures."""

    def rotate() -> None:
        old_version = sm.get_secret_value(SecretId="n3xt/api")["VersionId"]
        new = n3xt_emulator.rotate_client(first.client_id)  # old secret rejected from now on
        pending = _store(sm, new, VersionStages=["AWSPENDING"])
        sm.update_secret_version_stage(
            SecretId="n3xt/api",
            VersionStage="AWSCURRENT",
            MoveToVersionId=pending,
            RemoveFromVersionId=old_version,
        )

    source = _RotateAfterNextRead(make_source(), rotate)
    with Authenticator(source, token_url=n3xt_emulator.token_url()) as auth:
        statuses = api(auth, 20)
        source.armed = True
        n3xt_emulator.expire_tokens()  # the next call needs a new token: a refresh now
        statuses += api(auth, 20)

    assert statuses == [200] * 40
    counters = n3xt_emulator.counters
    assert counters.token_requests.get("invalid_client") == 1
    assert counters.api_calls.get("ok") == 40
    stages = [call.params.get("VersionStage") for call in fault_proxy.calls()]
    assert stages == ["AWSCURRENT"] * 3  # first token, refresh, re-read after invalid_client


def test_secrets_manager_down_at_refresh_uses_last_good_credentials(
    n3xt_emulator, make_source, fault_proxy, first, api
) -> None:
    """Fault proxy drops every connection while the token is refreshed: no call fails."""
    source = make_source(retry=RetryPolicy(max_attempts=2))
    with Authenticator(source, token_url=n3xt_emulator.token_url()) as auth:
        assert api(auth, 5) == [200] * 5
        reads_before = len(fault_proxy.calls())
        fault_proxy.disconnect(count=100)
        n3xt_emulator.expire_tokens()

        statuses = api(auth, 5)

        tried = len(fault_proxy.calls()) - reads_before
    assert statuses == [200] * 5
    assert tried >= 2  # the refresh did try Secrets Manager (both attempts of the policy)
    assert n3xt_emulator.counters.token_requests.get("success") == 2


def test_get_secret_value_at_most_once_per_refresh_over_1000_api_calls(
    n3xt_emulator, make_source, fault_proxy, first, api
) -> None:
    """1,000 API calls across six token lifetimes: one GetSecretValue per refresh, none per call."""
    with Authenticator(make_source(), token_url=n3xt_emulator.token_url()) as auth:
        statuses: list[int] = []
        for _ in range(5):
            statuses += api(auth, 200)
            n3xt_emulator.expire_tokens()  # the next call forces a refresh
        refreshes = auth.stats.refreshes

    assert statuses == [200] * 1000
    reads = len(fault_proxy.calls())
    counters = n3xt_emulator.counters
    invalid_client = counters.token_requests.get("invalid_client", 0)
    assert refreshes >= 5
    assert reads >= 5  # re-read at each refresh, so a rotated secret is picked up
    assert reads <= refreshes + invalid_client
    assert reads <= counters.token_requests_total
    assert {call.params.get("VersionStage") for call in fault_proxy.calls()} == {"AWSCURRENT"}
