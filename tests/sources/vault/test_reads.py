"""VaultSource reads against a real OpenBao dev server: KV v2, KV v1, versions, keys."""

from __future__ import annotations

import os
import signal

import pytest

import n3xt_creds
from n3xt_creds import CredentialsNotFoundError, SourceError
from n3xt_creds.sources.vault import VaultSource, VaultTokenAuth
from tests.sources.vault._support import assert_no_secret

pytestmark = pytest.mark.vault

PAIR = {"client_id": "client-abc", "client_secret": "s3cr3t-value-xyz"}


@pytest.fixture
def token_source(make_source, vault):
    """Build sources that read with the root token (closed after the test)."""

    def build(**kwargs) -> VaultSource:
        kwargs.setdefault("environ", {})
        return make_source(vault.url, auth=VaultTokenAuth(vault.root_token), **kwargs)

    return build


def test_reads_kv_v2_latest_version(token_source, vault) -> None:
    path = vault.new_path()
    vault.put(path, {"client_id": "old", "client_secret": "old-secret"})
    vault.put(path, PAIR)
    credentials = token_source(path=path).get_credentials()
    assert credentials.client_id == "client-abc"
    assert credentials.client_secret.get_secret_value() == "s3cr3t-value-xyz"
    assert credentials.source == f"vault:secret/{path}@v2"
    assert_no_secret(repr(credentials), PAIR["client_secret"])


def test_reads_a_pinned_kv_v2_version(token_source, vault) -> None:
    path = vault.new_path()
    vault.put(path, PAIR)
    vault.put(path, {"client_id": "newer", "client_secret": "newer-secret"})
    credentials = token_source(path=path, version=1).get_credentials()
    assert credentials.client_id == "client-abc"
    assert credentials.source.endswith("@v1")


def test_reads_kv_v1(token_source, vault) -> None:
    path = vault.new_path()
    vault.put(path, PAIR, mount="kv1")
    credentials = token_source(path=path, mount_point="kv1", kv_version=1).get_credentials()
    assert credentials.client_id == "client-abc"
    assert credentials.source == f"vault:kv1/{path}"


def test_custom_key_names(token_source, vault) -> None:
    path = vault.new_path()
    vault.put(path, {"id": "client-abc", "secret": "s3cr3t-value-xyz"})
    source = token_source(path=path, client_id_key="id", client_secret_key="secret")
    assert source.get_credentials().client_id == "client-abc"


def test_url_namespace_and_token_from_the_environment(make_source, vault) -> None:
    """VAULT_ADDR, VAULT_NAMESPACE and VAULT_TOKEN, the way the vault CLI uses them."""
    root = vault.root()
    namespace = "team-" + vault.new_path().split("/")[1]
    root.write_data(f"sys/namespaces/{namespace}", data={})
    root.adapter.namespace = namespace
    root.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
    root.secrets.kv.v2.create_or_update_secret(path="n3xt/api", secret=PAIR, mount_point="secret")
    environ = {
        "VAULT_ADDR": vault.url,
        "VAULT_NAMESPACE": namespace,
        "VAULT_TOKEN": vault.root_token,
    }
    source = make_source(environ=environ)
    assert source.get_credentials().client_id == "client-abc"
    assert f"namespace {namespace}" in source.describe()
    # Without the namespace header the same path is empty in the root namespace.
    with pytest.raises(CredentialsNotFoundError):
        make_source(
            vault.url, path="n3xt/api/nowhere", environ={"VAULT_TOKEN": vault.root_token}
        ).get_credentials()


def test_token_from_vault_token_file(make_source, vault, tmp_path) -> None:
    (tmp_path / ".vault-token").write_text(vault.root_token + "\n")
    path = vault.new_path()
    vault.put(path, PAIR)
    source = make_source(vault.url, path=path, environ={"HOME": str(tmp_path)})
    assert source.get_credentials().client_id == "client-abc"


def test_no_token_anywhere_is_a_source_error_naming_where_it_looked(
    make_source, vault, tmp_path
) -> None:
    source = make_source(vault.url, environ={"HOME": str(tmp_path)})
    with pytest.raises(
        SourceError, match=r"VAULT_TOKEN is not set and .*\.vault-token does not exist"
    ):
        source.get_credentials()


def test_describe_and_repr_are_secret_free(token_source, vault) -> None:
    source = token_source(path="n3xt/api", version=3)
    text = source.describe()
    assert text == f"vault {vault.url} (token (given to VaultTokenAuth), kv v2 secret/n3xt/api@v3)"
    assert_no_secret(text + repr(source) + repr(source.auth), vault.root_token)
    assert n3xt_creds.sources.describe_source(source) == text


def test_path_missing_is_credentials_not_found(token_source, vault) -> None:
    source = token_source(path="n3xt/does-not-exist")
    with pytest.raises(
        CredentialsNotFoundError, match="secret/n3xt/does-not-exist: no secret at this path"
    ) as info:
        source.get_credentials()
    assert info.value.looked_for == (f"vault:{vault.url}/v1/secret/data/n3xt/does-not-exist",)


def test_kv_v1_path_missing_is_credentials_not_found(token_source, vault) -> None:
    source = token_source(path="n3xt/nothing", mount_point="kv1", kv_version=1)
    with pytest.raises(CredentialsNotFoundError, match="no secret at this path"):
        source.get_credentials()


def test_deleted_latest_version_says_deleted(token_source, vault) -> None:
    path = vault.new_path()
    vault.put(path, PAIR)
    vault.root().secrets.kv.v2.delete_latest_version_of_secret(path=path)
    with pytest.raises(
        CredentialsNotFoundError, match="the latest version was deleted; undelete it"
    ):
        token_source(path=path).get_credentials()


def test_deleted_pinned_version_says_deleted(token_source, vault) -> None:
    path = vault.new_path()
    vault.put(path, PAIR)
    vault.put(path, PAIR)
    vault.root().secrets.kv.v2.delete_secret_versions(path=path, versions=[1])
    with pytest.raises(CredentialsNotFoundError, match=r"@v1: version 1 was deleted"):
        token_source(path=path, version=1).get_credentials()
    assert token_source(path=path).get_credentials().source.endswith("@v2")


def test_destroyed_version_says_destroyed(token_source, vault) -> None:
    path = vault.new_path()
    vault.put(path, PAIR)
    vault.put(path, PAIR)
    vault.root().secrets.kv.v2.destroy_secret_versions(path=path, versions=[1])
    with pytest.raises(CredentialsNotFoundError, match=r"version 1 was destroyed \(permanently\)"):
        token_source(path=path, version=1).get_credentials()


def test_pinned_version_that_never_existed(token_source, vault) -> None:
    path = vault.new_path()
    vault.put(path, PAIR)
    with pytest.raises(CredentialsNotFoundError, match="version 7 does not exist"):
        token_source(path=path, version=7).get_credentials()


def test_missing_key_names_the_key_never_the_values(token_source, vault) -> None:
    path = vault.new_path()
    vault.put(path, {"client_id": "client-abc", "clientsecret": "typo-secret-value"})
    with pytest.raises(
        SourceError, match=r"no key `client_secret` — did you mean 'clientsecret'\?"
    ) as info:
        token_source(path=path).get_credentials()
    assert_no_secret(str(info.value), "typo-secret-value", "client-abc")
    assert info.value.retryable is False


@pytest.mark.parametrize(
    ("value", "kind"), [(12345, "of type int"), ("   ", "an empty string"), (["x"], "of type list")]
)
def test_key_that_is_not_a_string_names_the_key(token_source, vault, value, kind) -> None:
    path = vault.new_path()
    vault.put(path, {"client_id": "client-abc", "client_secret": value})
    with pytest.raises(
        SourceError, match=f"key `client_secret` is {kind}, expected a non-empty string"
    ):
        token_source(path=path).get_credentials()


def test_unknown_mount_is_a_source_error(token_source, vault) -> None:
    with pytest.raises(SourceError, match="no secrets engine is mounted at nope/"):
        token_source(mount_point="nope").get_credentials()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # 3.12+ warns about fork with threads
def test_source_works_in_a_forked_child(token_source, vault) -> None:
    path = vault.new_path()
    vault.put(path, PAIR)
    source = token_source(path=path)
    source.get_credentials()
    source._lock.acquire()  # as if another thread were mid-read when the process forked
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        signal.alarm(10)  # a deadlock ends the child instead of hanging the test
        try:
            ok = source.get_credentials().client_id == "client-abc"
        except BaseException:
            ok = False
        os._exit(0 if ok else 1)
    source._lock.release()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
