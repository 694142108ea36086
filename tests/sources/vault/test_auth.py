"""AppRole and Kubernetes logins, token renewal and re-login, against real OpenBao.

Token lifetimes are driven by an injected clock: the source decides when to renew
or log in again by its clock, while Vault enforces TTLs and max_ttl in real time,
so these tests need no sleeping. Kubernetes auth is OpenBao's real method; only
the cluster's TokenReview API behind it is a local fake (see conftest.py).
"""

from __future__ import annotations

import logging

import pytest

from n3xt_creds import SourceError
from n3xt_creds.sources.vault import VaultAppRoleAuth, VaultKubernetesAuth, VaultSource
from n3xt_creds.testing import ManualClock
from tests._poll import wait_until
from tests.sources.vault._support import assert_no_secret, service_account_jwt

pytestmark = pytest.mark.vault

PAIR = {"client_id": "client-abc", "client_secret": "s3cr3t-value-xyz"}


@pytest.fixture
def path(vault) -> str:
    path = vault.new_path()
    vault.put(path, PAIR)
    return path


@pytest.fixture
def approle_source(vault, path, request_log):
    """Build AppRole sources whose Vault requests land in ``request_log``."""

    def build(*, role="n3xt", clock=None, secret_id=None) -> VaultSource:
        role_id, fresh_secret_id = vault.approle(role)
        environ = {"VAULT_ROLE_ID": role_id, "VAULT_SECRET_ID": secret_id or fresh_secret_id}
        return VaultSource(
            vault.url,
            path=path,
            auth=VaultAppRoleAuth(),
            environ=environ,
            session=request_log.session,  # closed by the request_log fixture
            clock=clock or ManualClock(),
        )

    return build


def test_approle_login_with_secret_id_from_a_file(
    make_source, vault, path, request_log, tmp_path, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    role_id, secret_id = vault.approle()
    secret_id_file = tmp_path / "secret-id"
    secret_id_file.write_text(secret_id + "\n")
    auth = VaultAppRoleAuth(role_id, secret_id_file=secret_id_file)
    source = make_source(vault.url, path=path, auth=auth, environ={}, session=request_log.session)
    credentials = source.get_credentials()
    assert credentials.client_id == "client-abc"
    assert source.describe() == (
        f"vault {vault.url} (approle (role_id {role_id}, secret_id from file {secret_id_file}, "
        f"mount approle), kv v2 secret/{path})"
    )
    assert request_log.count("/v1/auth/approle/login") == 1
    assert len(request_log.client_tokens) == 1
    shown = caplog.text + repr(source) + source.describe() + repr(credentials)
    assert_no_secret(shown, secret_id, *request_log.client_tokens)


def test_login_token_is_reused_then_renewed_before_its_ttl_ends(
    approle_source, request_log, caplog
) -> None:
    caplog.set_level(logging.DEBUG, logger="n3xt_creds")
    clock = ManualClock()
    source = approle_source(clock=clock)
    source.get_credentials()
    clock.advance(30)  # half of the 60 s TTL: still fresh
    source.get_credentials()
    assert request_log.count("/v1/auth/approle/login") == 1
    assert request_log.count("/renew-self") == 0
    clock.advance(15)  # past two thirds: renew in place
    source.get_credentials()
    clock.advance(45)  # the renewal restarted the TTL: renew again, still no login
    source.get_credentials()
    assert request_log.count("/v1/auth/token/renew-self") == 2
    assert request_log.count("/v1/auth/approle/login") == 1
    assert request_log.count("/v1/secret/data/") == 4
    assert "vault: token renewed for 60s" in caplog.text
    assert_no_secret(caplog.text, *request_log.client_tokens)


def test_non_renewable_token_means_a_new_login(approle_source, vault, path, request_log) -> None:
    clock = ManualClock()
    source = approle_source(role="batch", clock=clock)
    source.get_credentials()
    clock.advance(45)
    source.get_credentials()
    assert request_log.count("/v1/auth/approle/login") == 2
    assert request_log.count("/renew-self") == 0


def test_renewal_capped_by_max_ttl_means_a_new_login(
    approle_source, vault, path, request_log
) -> None:
    clock = ManualClock()
    source = approle_source(role="capped", clock=clock)
    source.get_credentials()
    # Vault counts max_ttl in whole seconds of real time: wait until its clock has
    # moved, so that a renewal comes back shorter than asked for.
    root = vault.root()
    wait_until(
        lambda: root.auth.token.lookup_accessor(request_log.accessors[0])["data"]["ttl"] <= 58,
        timeout=5,
        what="a second of the capped token's max_ttl to pass",
    )
    clock.advance(45)
    source.get_credentials()
    assert request_log.count("/v1/auth/token/renew-self") == 1
    assert request_log.count("/v1/auth/approle/login") == 2


def test_expired_token_is_replaced_by_a_login_without_renewing(
    approle_source, vault, path, request_log
) -> None:
    clock = ManualClock()
    source = approle_source(clock=clock)
    source.get_credentials()
    clock.advance(120)
    source.get_credentials()
    assert request_log.count("/renew-self") == 0
    assert request_log.count("/v1/auth/approle/login") == 2


def test_revoked_login_token_gets_one_fresh_login(approle_source, vault, path, request_log) -> None:
    source = approle_source()
    source.get_credentials()
    vault.root().sys.revoke_prefix("auth/approle/login")
    assert source.get_credentials().client_id == "client-abc"
    assert request_log.count("/v1/auth/approle/login") == 2
    statuses = [status for _, p, status in request_log.calls if "/secret/data/" in p]
    assert statuses == [200, 403, 200]


def test_rejected_secret_id_says_a_new_one_is_needed(
    approle_source, vault, path, request_log
) -> None:
    _, secret_id = vault.approle()
    clock = ManualClock()
    source = approle_source(clock=clock, secret_id=secret_id)
    source.get_credentials()
    vault.root().auth.approle.destroy_secret_id(role_name="n3xt", secret_id=secret_id)
    clock.advance(120)  # the login token is gone: a new login with the dead secret_id
    with pytest.raises(
        SourceError,
        match="the secret_id from VAULT_SECRET_ID is current — an expired, used-up or revoked secret_id needs a new one",
    ) as info:
        source.get_credentials()
    assert "from VAULT_SECRET_ID" in str(info.value)
    assert info.value.retryable is False
    assert request_log.count("/v1/auth/approle/login") == 2  # no retry storm
    assert_no_secret(str(info.value), secret_id)


def test_approle_without_secret_id_names_the_variable(make_source, vault, path) -> None:
    source = make_source(vault.url, path=path, auth=VaultAppRoleAuth("some-role-id"), environ={})
    with pytest.raises(SourceError, match="no secret_id: the variable VAULT_SECRET_ID is not set"):
        source.get_credentials()


def test_kubernetes_login_rereads_the_jwt_file_at_every_login(
    make_source, vault, path, request_log, tmp_path
) -> None:
    jwt_file = tmp_path / "token"
    first, second = service_account_jwt("first"), service_account_jwt("second")
    jwt_file.write_text(first)
    clock = ManualClock()
    source = make_source(
        vault.url,
        path=path,
        auth=VaultKubernetesAuth("n3xt", jwt_file=jwt_file),
        environ={},
        session=request_log.session,
        clock=clock,
    )
    assert source.get_credentials().client_id == "client-abc"
    assert vault.token_review.reviewed[-1] == first
    jwt_file.write_text(second)  # the kubelet rotated the projected token
    clock.advance(120)
    assert source.get_credentials().client_id == "client-abc"
    assert vault.token_review.reviewed[-1] == second
    assert request_log.count("/v1/auth/kubernetes/login") == 2
    assert "kubernetes (role n3xt, jwt" in source.describe()
    assert_no_secret(repr(source) + source.describe(), first, second)


def test_kubernetes_missing_jwt_file_is_a_source_error(make_source, vault, tmp_path) -> None:
    auth = VaultKubernetesAuth("n3xt", jwt_file=tmp_path / "absent")
    source = make_source(vault.url, auth=auth, environ={})
    with pytest.raises(SourceError, match=r"service-account JWT file .*absent does not exist"):
        source.get_credentials()


def test_kubernetes_login_rejected_names_the_role(make_source, vault, tmp_path) -> None:
    jwt_file = tmp_path / "token"
    jwt_file.write_text(service_account_jwt("x"))
    source = make_source(
        vault.url, auth=VaultKubernetesAuth("no-such-role", jwt_file=jwt_file), environ={}
    )
    with pytest.raises(
        SourceError, match="login as role no-such-role at auth/kubernetes/login was rejected"
    ):
        source.get_credentials()
