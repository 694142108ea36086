"""OpenTelemetry with a real OpenBao behind VaultSource: Vault goes down, the last good
credentials keep tokens coming, and the telemetry says so (nothing secret in it)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest
from opentelemetry.trace import StatusCode

from n3xt_creds import Authenticator, RetryPolicy
from n3xt_creds.sources.vault import VaultSource, VaultTokenAuth
from n3xt_creds.testing import Emulator, ManualClock
from tests.authenticator._otel import Sdk, exported_strings
from tests.servers.vault import BaoServer

pytestmark = pytest.mark.vault

EXPIRED = 3570 + 1


@pytest.fixture
def sdk() -> Iterator[Sdk]:
    made = Sdk()
    yield made
    made.shutdown()


def test_vault_down_last_good_credentials_in_use(
    fresh_bao: Callable[..., BaoServer],
    n3xt_emulator: Emulator,
    sdk: Sdk,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    server = fresh_bao()
    pair = n3xt_emulator.add_client()
    secret = pair.client_secret.get_secret_value()
    server.root().secrets.kv.v2.create_or_update_secret(
        path="n3xt/api", secret={"client_id": pair.client_id, "client_secret": secret}
    )
    source = VaultSource(
        server.url,
        auth=VaultTokenAuth(server.root_token),
        retry=RetryPolicy(max_attempts=2, base_delay=0.01),
    )
    clock = ManualClock()
    with Authenticator(
        source, token_url=n3xt_emulator.token_url(), clock=clock, **sdk.providers
    ) as auth:
        first = auth.get_token()
        assert sdk.value("n3xt_creds.source.reads", source="vault", result="success") == 1

        server.stop()  # Vault is down
        clock.advance(EXPIRED)
        second = auth.get_token()  # still a token: the last good credentials
    source.close()

    assert second != first
    assert (
        sdk.value(
            "n3xt_creds.source.reads", source="vault", result="error", error__type="SourceError"
        )
        == 1
    )
    assert sdk.value("n3xt_creds.credentials.last_good", source="vault") == 1
    assert sdk.value("n3xt_creds.token.refreshes", trigger="expired", result="success") == 1
    assert sdk.value("n3xt_creds.token.requests", result="success") == 2
    refresh = [s for s in sdk.spans() if s.name == "n3xt_creds refresh"][-1]
    assert dict(refresh.attributes or {})["n3xt_creds.source"] == "vault"
    assert [e.name for e in refresh.events] == ["last_good_credentials"]
    read = [s for s in sdk.spans() if s.name == "n3xt_creds source read"][-1]
    assert read.status.status_code is StatusCode.ERROR
    assert dict(read.attributes or {})["error.type"] == "SourceError"

    last_good = [r for r in caplog.records if getattr(r, "event", None) == "last_good_credentials"]
    assert [(r.trigger, r.result) for r in last_good] == [("expired", "last_good")]  # type: ignore[attr-defined]
    # Exported data and log fields hold no secret, token or client_id; the log text
    # (unchanged by the fields) names the client_id, never a secret or a token.
    fields = [
        f"{k}={v}"
        for r in caplog.records
        for k, v in vars(r).items()
        if k not in ("msg", "args", "message")
    ]
    for text in exported_strings(sdk) + fields:
        for value in (secret, server.root_token, first, second, pair.client_id):
            assert value not in text, text
    for record in caplog.records:
        for value in (secret, server.root_token, first, second):
            assert value not in record.getMessage()
