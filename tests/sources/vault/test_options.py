"""from_options: the [*.sources.vault] settings table, validated before any network call."""

from __future__ import annotations

import subprocess
import sys

import pytest

from n3xt_creds import ConfigError
from n3xt_creds.sources.options import SourceOptions
from n3xt_creds.sources.vault import (
    VaultAppRoleAuth,
    VaultKubernetesAuth,
    VaultSource,
    VaultTokenAuth,
    from_options,
)

ADDR = "https://vault.internal:8200"


def options(**table) -> SourceOptions:
    return SourceOptions(table, prefix="sources.vault", path="settings.toml", env="production")


def test_defaults_match_design(monkeypatch) -> None:
    monkeypatch.setenv("VAULT_ADDR", ADDR)
    monkeypatch.delenv("VAULT_NAMESPACE", raising=False)
    monkeypatch.delenv("VAULT_CACERT", raising=False)
    source = from_options(options())
    assert isinstance(source, VaultSource)
    assert (source.url, source.mount_point, source.path, source.kv_version) == (
        ADDR,
        "secret",
        "n3xt/api",
        2,
    )
    assert isinstance(source.auth, VaultTokenAuth)
    assert (
        source.describe()
        == f"vault {ADDR} (token (from VAULT_TOKEN, else ~/.vault-token), kv v2 secret/n3xt/api)"
    )


def test_every_key() -> None:
    source = from_options(
        options(
            url=ADDR,
            mount_point="kv",
            path="/payments/n3xt/",
            kv_version=2,
            namespace="team-a",
            client_id_key="id",
            client_secret_key="secret",
            version="3",
            verify=True,
            ca_cert="/etc/ssl/vault-ca.pem",
            client_cert="/etc/ssl/client.pem",
            client_key="/etc/ssl/client-key.pem",
            timeout=2.5,
            auth_method="approle",
            role_id="role-123",
            secret_id_file="/run/secrets/vault-secret-id",
            approle_mount="approle-n3xt",
        )
    )
    assert source.path == "payments/n3xt"
    assert source.version == 3
    assert source.verify == "/etc/ssl/vault-ca.pem"
    assert source.client_cert == ("/etc/ssl/client.pem", "/etc/ssl/client-key.pem")
    assert source.timeout == 2.5
    assert source.namespace == "team-a"
    assert isinstance(source.auth, VaultAppRoleAuth)
    assert source.describe() == (
        f"vault {ADDR} (approle (role_id role-123, secret_id from file /run/secrets/vault-secret-id, "
        "mount approle-n3xt), kv v2 kv/payments/n3xt@v3, namespace team-a)"
    )


def test_kubernetes_keys() -> None:
    source = from_options(
        options(url=ADDR, auth_method="kubernetes", role="n3xt", kubernetes_mount="k8s-prod")
    )
    assert isinstance(source.auth, VaultKubernetesAuth)
    assert source.auth.describe() == (
        "kubernetes (role n3xt, jwt /var/run/secrets/kubernetes.io/serviceaccount/token, mount k8s-prod)"
    )


def test_kubernetes_needs_a_role() -> None:
    with pytest.raises(
        ConfigError, match=r"`sources.vault.role` is required when auth_method = \"kubernetes\""
    ):
        from_options(options(url=ADDR, auth_method="kubernetes"))


@pytest.mark.parametrize("key", ["token", "secret_id"])
def test_secret_values_in_settings_are_refused(key) -> None:
    with pytest.raises(ConfigError, match=f"`sources.vault.{key}` holds a secret value") as info:
        from_options(options(url=ADDR, auth_method="approle", **{key: "hvs.pasted-by-mistake"}))
    assert "hvs.pasted-by-mistake" not in str(info.value)
    assert str(info.value).startswith("settings.toml [production]: ")


def test_unknown_key_gets_a_suggestion() -> None:
    with pytest.raises(
        ConfigError,
        match="`sources.vault.mountpoint` is not a known setting: did you mean `mount_point`",
    ):
        from_options(options(url=ADDR, mountpoint="secret"))


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"kv_version": 3}, r"`sources.vault.kv_version` must be one of 1, 2; got 3"),
        (
            {"auth_method": "ldap"},
            r"`sources.vault.auth_method` must be one of token, approle, kubernetes",
        ),
        ({"timeout": 0}, r"`sources.vault.timeout` must be greater than 0"),
        ({"version": 0}, r"`sources.vault.version` must be greater than 0"),
        ({"verify": "maybe"}, r"`sources.vault.verify` must be true or false"),
        (
            {"kv_version": 1, "version": 2},
            r"`sources.vault.version` is invalid: .*KV v1 has no versions",
        ),
        ({"url": "vault.internal:8200"}, r"`sources.vault.url` is invalid: .*http\(s\)://host"),
        ({"client_cert": "/c.pem"}, r"client_cert and client_key go together"),
    ],
)
def test_bad_values_name_key_file_and_environment(table, message) -> None:
    table.setdefault("url", ADDR)
    with pytest.raises(ConfigError, match=message) as info:
        from_options(options(**table))
    assert str(info.value).startswith("settings.toml [production]: ")


def test_no_address_anywhere(monkeypatch) -> None:
    monkeypatch.delenv("VAULT_ADDR", raising=False)
    with pytest.raises(ConfigError, match="no Vault address: pass url .* or set VAULT_ADDR"):
        from_options(options())


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"kv_version": 3}, "kv_version"),
        ({"path": "/"}, "path"),
        ({"path": "n3xt/../other"}, "path"),
        ({"mount_point": ""}, "mount_point"),
        ({"client_id_key": "k", "client_secret_key": "k"}, "client_secret_key"),
        ({"retry": 3}, "retry"),
        ({"timeout": float("inf")}, "timeout"),
        ({"version": True}, "version"),
    ],
)
def test_constructor_validation(kwargs, key) -> None:
    with pytest.raises(ConfigError) as info:
        VaultSource(ADDR, environ={}, **kwargs)
    assert info.value.key == key


def test_vault_skip_verify_is_not_honoured() -> None:
    """Turning TLS verification off must be explicit, never a stray variable."""
    assert VaultSource(ADDR, environ={"VAULT_SKIP_VERIFY": "true"}).verify is True
    assert VaultSource(ADDR, verify=False, environ={}).verify is False


def test_import_does_not_import_hvac() -> None:
    code = "import sys, n3xt_creds, n3xt_creds.sources.vault; print('hvac' in sys.modules, 'requests' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("name", ["vault", "aws"])
def test_retry_keys_are_the_retry_policy_fields(name) -> None:
    """Both sources read max_attempts / base_delay / max_delay / deadline the same way."""
    from n3xt_creds import RetryPolicy
    from n3xt_creds.sources import aws, vault

    factory = {"vault": vault.from_options, "aws": aws.from_options}[name]
    table = {"url": ADDR} if name == "vault" else {"region_name": "eu-west-1"}
    retry = {"max_attempts": "2", "base_delay": 0.01, "max_delay": "0.5", "deadline": 3}
    source = factory(SourceOptions({**table, **retry}, prefix=f"sources.{name}", environ={}))
    assert source.retry == RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.5, deadline=3.0)

    with pytest.raises(ConfigError, match=f"`sources.{name}.deadline` must be greater than 0"):
        factory(SourceOptions({**table, "deadline": 0}, prefix=f"sources.{name}", environ={}))


def test_token_auth_keys_reach_the_auth(tmp_path) -> None:
    source = from_options(options(url=ADDR, token_var="AGENT_TOKEN", token_file=str(tmp_path)))
    assert isinstance(source.auth, VaultTokenAuth)
    assert (source.auth.token_var, source.auth.token_file) == ("AGENT_TOKEN", str(tmp_path))
