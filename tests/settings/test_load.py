"""Which file, which environment, how layers merge, and where each value came from."""

from __future__ import annotations

from pathlib import Path

import pytest

from n3xt_creds import ChainSource, ConfigError, EnvSource, FileSource
from n3xt_creds.settings import build_source, load_settings


def test_environment_defaults_to_development(write_settings):
    path = write_settings()
    settings = load_settings(path, environ={})
    assert settings.env == "development"
    assert "N3XT_CREDS_ENV unset" in settings.env_reason
    assert settings.refresh_margin == 120.0
    assert settings.origin("refresh_margin") == f"{path} [development]"
    assert settings.origin("token_url") == f"{path} [default]"
    assert settings.origin("timeout") == "built-in default"
    assert settings.timeout == 10.0


def test_environment_from_variable_and_argument(write_settings):
    path = write_settings()
    from_var = load_settings(path, environ={"N3XT_CREDS_ENV": "production"})
    assert (from_var.env, from_var.source, from_var.timeout) == ("production", "file", 3.0)
    assert from_var.env_reason == "from N3XT_CREDS_ENV"
    # The argument wins over the variable.
    from_arg = load_settings(path, "development", environ={"N3XT_CREDS_ENV": "production"})
    assert from_arg.env == "development"


def test_environment_tables_deep_merge_over_default(write_settings):
    path = write_settings()
    settings = load_settings(path, "production", environ={})
    # [production.sources.file] adds to [default.sources]: env's table is still there.
    assert settings.sources["env"]["client_id_var"] == "APP_ID"
    assert settings.sources["file"]["directory"] == "/run/secrets/n3xt"


def test_list_in_environment_replaces_default_list(write_settings):
    path = write_settings(
        """
        [default]
        token_url = "https://a.n3xt.io/t"
        chain = ["env", "file"]
        [production]
        chain = ["file"]
        """
    )
    assert load_settings(path, "production", environ={}).chain == ("file",)


def test_file_from_variable_else_cwd(write_settings, tmp_path, monkeypatch):
    path = write_settings()
    settings = load_settings(environ={"N3XT_CREDS_SETTINGS": str(path)})
    assert settings.path == path
    assert settings.path_reason == "named by N3XT_CREDS_SETTINGS"
    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={})
    assert settings.path == tmp_path / "settings.toml"
    assert "default ./settings.toml" in settings.path_reason


def test_variables_override_with_nesting_and_casting(write_settings):
    path = write_settings()
    settings = load_settings(
        path,
        environ={
            "N3XT_CREDS_SOURCE": "chain",
            "N3XT_CREDS_CHAIN": '["file", "env"]',
            "N3XT_CREDS_TIMEOUT": "@float 2.5",
            "N3XT_CREDS_REFRESH_MARGIN": "60",
            "N3XT_CREDS_API_HOSTS": "api.n3xt.io, *.eu.n3xt.io",
            "N3XT_CREDS_SOURCES__FILE__DIRECTORY": "/mnt/creds",
        },
    )
    assert settings.source == "chain"
    assert settings.chain == ("file", "env")
    assert settings.timeout == 2.5
    assert settings.refresh_margin == 60.0
    assert settings.api_hosts == ("api.n3xt.io", "*.eu.n3xt.io")
    assert settings.sources["file"]["directory"] == "/mnt/creds"
    assert settings.origin("source") == "environment variable N3XT_CREDS_SOURCE"
    assert settings.origin("sources.file.directory") == (
        "environment variable N3XT_CREDS_SOURCES__FILE__DIRECTORY"
    )
    # The rest of [default.sources.env] is untouched by the nested override.
    assert settings.origin("sources.env.client_id_var") == f"{path} [default]"


def test_build_source_env_file_and_chain(write_settings):
    path = write_settings()
    environ = {"APP_ID": "id-1", "APP_SECRET": "s-1"}
    env_source = build_source(load_settings(path, environ=environ))
    assert isinstance(env_source, EnvSource)
    # The injected environ reaches the source too.
    assert env_source.get_credentials().client_id == "id-1"
    file_source = build_source(load_settings(path, "production", environ={}))
    assert isinstance(file_source, FileSource)
    assert file_source.directory == Path("/run/secrets/n3xt")
    chain = build_source(load_settings(path, environ={"N3XT_CREDS_SOURCE": "chain"}))
    assert isinstance(chain, ChainSource)
    assert [type(s) for s in chain.sources] == [EnvSource, FileSource]


def test_settings_are_frozen_and_effective_rows_name_origins(write_settings):
    path = write_settings()
    settings = load_settings(path, environ={"N3XT_CREDS_TIMEOUT": "4"})
    with pytest.raises(AttributeError):
        settings.source = "aws"  # type: ignore[misc]
    with pytest.raises(TypeError):
        settings.sources["env"]["client_id_var"] = "X"  # type: ignore[index]
    rows = {key: (value, origin) for key, value, origin in settings.effective()}
    assert rows["timeout"] == (4.0, "environment variable N3XT_CREDS_TIMEOUT")
    assert rows["sources.env.client_secret_var"] == ("APP_SECRET", f"{path} [default]")


def test_from_settings_returns_an_authenticator(write_settings):
    import n3xt_creds

    auth = n3xt_creds.from_settings(write_settings(), environ={})
    try:
        assert isinstance(auth, n3xt_creds.Authenticator)
        assert auth.token_url == "https://authn.alpha.n3xt.io/v1/public/p-1/oauth2/token"
        assert isinstance(auth.source, EnvSource)
    finally:
        auth.close()


def test_authenticator_config_error_names_file_and_env(write_settings):
    import n3xt_creds

    path = write_settings(
        """
        [default]
        token_url = "https://a.n3xt.io/t"
        api_hosts = ["https://not-a-host-pattern/"]
        """
    )
    with pytest.raises(ConfigError) as caught:
        n3xt_creds.from_settings(path, environ={})
    assert str(caught.value).startswith(f"{path} [development]: ")


def test_effective_shows_names_of_secrets_and_variables(write_settings):
    """AWS's secret_id is the secret's *name*; *_var / *_key name a variable or a key."""
    path = write_settings(
        """
        [default]
        token_url = "https://a.n3xt.io/t"
        [default.sources.aws]
        secret_id = "prod/n3xt"
        client_secret_key = "secret"
        [default.sources.env]
        client_secret_var = "MY_SECRET_VAR"
        """
    )
    rows = {key: value for key, value, _ in load_settings(path, environ={}).effective()}
    assert rows["sources.aws.secret_id"] == "prod/n3xt"
    assert rows["sources.aws.client_secret_key"] == "secret"
    assert rows["sources.env.client_secret_var"] == "MY_SECRET_VAR"


def test_a_vault_secret_id_in_an_unselected_table_is_refused_unechoed(write_settings):
    """AppRole's secret_id is a secret: refused even where the vault source is not chosen."""
    path = write_settings(
        """
        [default]
        token_url = "https://a.n3xt.io/t"
        source = "env"
        [default.sources.vault]
        secret_id = "canary-approle-secret-id-5be1"
        """
    )
    with pytest.raises(
        ConfigError, match="`sources.vault.secret_id` holds a secret value"
    ) as caught:
        load_settings(path, environ={})
    assert "canary-approle-secret-id-5be1" not in str(caught.value)
