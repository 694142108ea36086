"""from_dynaconf(): the app's own Dynaconf object, its environment, files and layering.

Real Dynaconf objects over files in a temporary directory. dynaconf reads its own
variables (ENV_FOR_DYNACONF, the prefix) from os.environ, so those are set with
monkeypatch; our N3XT_CREDS_* overrides go through the injected ``environ``.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import n3xt_creds
from n3xt_creds import ConfigError
from n3xt_creds.settings import load_dynaconf
from n3xt_creds.sources.vault import VaultSource

CANARY = "canary-SECRET-d1a7c0de"

APP_SETTINGS = """
[default]
api_base_url = "https://api.example.test"   # the app's own key
page_size = 50

[default.n3xt]
token_url = "https://authn.alpha.n3xt.io/v1/public/p-1/oauth2/token"
source = "env"

[default.n3xt.sources.vault]
path = "n3xt/api"

[production.n3xt]
dynaconf_merge = true
source = "vault"

[production.n3xt.sources.vault]
auth_method = "approle"
"""


@pytest.fixture(autouse=True)
def _clean_dynaconf_environment(monkeypatch):
    for name in ("ENV_FOR_DYNACONF", "MYAPP_N3XT__TIMEOUT", "MYAPP_N3XT__SOURCE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def app(tmp_path, monkeypatch):
    """``make(text, **files)``: write settings.toml (+ other files) and a Dynaconf over them."""
    from dynaconf import Dynaconf

    monkeypatch.chdir(tmp_path)

    def make(text: str = APP_SETTINGS, files: dict[str, str] | None = None):
        (tmp_path / "settings.toml").write_text(textwrap.dedent(text))
        for name, content in (files or {}).items():
            (tmp_path / name).write_text(textwrap.dedent(content))
        return Dynaconf(
            settings_files=["settings.toml", ".secrets.toml"],
            environments=True,
            envvar_prefix="MYAPP",
            root_path=str(tmp_path),
        )

    return make


def test_development_reads_the_section_and_leaves_the_app_keys_alone(app):
    settings = load_dynaconf(app(), environ={})
    assert settings.env == "development"
    assert settings.source == "env"
    assert settings.where == "settings.toml [development.n3xt]"
    assert settings.origin("token_url") == "settings.toml [default.n3xt]"
    assert settings.origin("timeout") == "built-in default"


def test_env_for_dynaconf_switches_environment_with_merge_and_provenance(app, monkeypatch):
    monkeypatch.setenv("ENV_FOR_DYNACONF", "production")
    monkeypatch.setenv("MYAPP_N3XT__TIMEOUT", "4")
    settings = load_dynaconf(app(), environ={})
    assert settings.env == "production"
    assert "ENV_FOR_DYNACONF=production" in settings.env_reason
    assert settings.source == "vault"
    assert settings.origin("source") == "settings.toml [production.n3xt]"
    assert settings.timeout == 4.0
    assert settings.origin("timeout") == "environment variable MYAPP_N3XT__TIMEOUT"
    assert dict(settings.sources["vault"]) == {"path": "n3xt/api", "auth_method": "approle"}
    assert settings.origin("sources.vault.path") == "settings.toml [default.n3xt]"
    assert settings.origin("sources.vault.auth_method") == "settings.toml [production.n3xt]"


def test_from_dynaconf_builds_the_selected_source(app, monkeypatch):
    monkeypatch.setenv("ENV_FOR_DYNACONF", "production")
    environ = {"VAULT_ADDR": "http://127.0.0.1:8200", "VAULT_ROLE_ID": "r-1"}
    with n3xt_creds.from_dynaconf(app(), environ=environ) as auth:
        assert isinstance(auth.source, VaultSource)


def test_local_file_global_table_and_n3xt_creds_variables_layer_on_top(app):
    settings = load_dynaconf(
        app(
            files={
                "settings.local.toml": """
                [development.n3xt]
                dynaconf_merge = true
                refresh_margin = 60
                """
            }
        ),
        environ={"N3XT_CREDS_SOURCE": "file"},
    )
    assert settings.refresh_margin == 60.0
    assert settings.origin("refresh_margin") == "settings.local.toml [development.n3xt]"
    assert settings.source == "file"
    assert settings.origin("source") == "environment variable N3XT_CREDS_SOURCE"


def test_validation_is_ours_and_names_the_section(app):
    with pytest.raises(ConfigError) as info:
        load_dynaconf(
            app(APP_SETTINGS + "\n[development.n3xt]\ndynaconf_merge = true\ntimout = 3\n"),
            environ={},
        )
    assert str(info.value).startswith("settings.toml [development.n3xt]: `timout`")
    assert "did you mean `timeout`?" in str(info.value)


def test_a_secret_from_dot_secrets_toml_is_refused_with_where_it_belongs(app):
    with pytest.raises(ConfigError) as info:
        load_dynaconf(
            app(
                files={
                    ".secrets.toml": f"""
                    [development.n3xt]
                    dynaconf_merge = true

                    [development.n3xt.sources.env]
                    client_secret = "{CANARY}"
                    """
                }
            ),
            environ={},
        )
    message = str(info.value)
    assert CANARY not in message
    assert "`sources.env.client_secret` holds a secret value" in message
    assert "N3XT_CLIENT_SECRET" in message
    assert ".secrets.toml [development.n3xt]" in message


def test_approle_secret_id_in_the_section_names_vault_secret_id(app, monkeypatch):
    monkeypatch.setenv("MYAPP_N3XT__SOURCES__VAULT__SECRET_ID", CANARY)
    with pytest.raises(ConfigError) as info:
        load_dynaconf(app(), environ={})
    message = str(info.value)
    assert CANARY not in message
    assert "VAULT_SECRET_ID" in message and "secret_id_file" in message
    assert "environment variable MYAPP_N3XT__SOURCES__VAULT__SECRET_ID" in message


def test_a_replaced_table_explains_dynaconf_merge(app, monkeypatch):
    monkeypatch.setenv("ENV_FOR_DYNACONF", "production")
    text = APP_SETTINGS.replace("[production.n3xt]\ndynaconf_merge = true\n", "[production.n3xt]\n")
    with pytest.raises(ConfigError) as info:
        load_dynaconf(app(text), environ={})
    message = str(info.value)
    assert "`token_url` is required" in message
    assert "settings.toml [default.n3xt] sets it" in message
    assert "dynaconf_merge = true" in message


def test_a_disagreeing_n3xt_creds_env_is_refused(app):
    with pytest.raises(ConfigError, match="N3XT_CREDS_ENV=production disagrees"):
        load_dynaconf(app(), environ={"N3XT_CREDS_ENV": "production"})


def test_another_section_name_and_a_missing_section(app):
    text = APP_SETTINGS.replace("n3xt]", "payments_auth]").replace("n3xt.", "payments_auth.")
    text = text.replace('path = "payments_auth/api"', 'path = "n3xt/api"')
    settings = load_dynaconf(app(text), "payments_auth", environ={})
    assert settings.where == "settings.toml [development.payments_auth]"
    with pytest.raises(ConfigError, match="`token_url` is required but not set"):
        load_dynaconf(app(text), environ={})
    url = "https://authn.alpha.n3xt.io/v1/public/p-2/oauth2/token"
    assert load_dynaconf(app(text), environ={"N3XT_CREDS_TOKEN_URL": url}).token_url == url


def test_not_a_dynaconf_object():
    with pytest.raises(ConfigError, match="takes the application's Dynaconf object"):
        load_dynaconf({"n3xt": {}}, environ={})


def test_paths_are_shown_as_the_user_names_them(app, tmp_path: Path):
    settings = load_dynaconf(app(), environ={})
    assert settings.path == Path("settings.toml")
    assert (tmp_path / settings.path).is_file()


def test_default_prefix_variables_are_named_as_set(app, monkeypatch, tmp_path):
    from dynaconf import Dynaconf

    app()  # writes settings.toml in the working directory
    monkeypatch.setenv("DYNACONF_N3XT__SOURCE", "file")
    settings = load_dynaconf(
        Dynaconf(root_path=str(tmp_path), settings_files=["settings.toml"], environments=True),
        environ={},
    )
    assert settings.source == "file"
    assert settings.origin("source") == "environment variable DYNACONF_N3XT__SOURCE"


@pytest.mark.vault
def test_a_secret_from_dynacons_vault_loader_is_refused(app, vault, tmp_path):
    from dynaconf import Dynaconf

    app()
    folder = f"dynaconf-{vault.new_path().rsplit('/', 1)[-1]}"
    vault.put(
        f"{folder}/development",
        {"n3xt": {"dynaconf_merge": True, "sources": {"env": {"client_secret": CANARY}}}},
    )
    settings = Dynaconf(
        root_path=str(tmp_path),
        settings_files=["settings.toml"],
        environments=True,
        vault_enabled_for_dynaconf=True,
        vault_for_dynaconf={"url": vault.url},
        vault_root_token_for_dynaconf=vault.root_token,
        vault_path_for_dynaconf=folder,
        vault_mount_point_for_dynaconf="secret",
    )
    with pytest.raises(ConfigError) as info:
        load_dynaconf(settings, environ={})
    message = str(info.value)
    assert CANARY not in message
    assert "`sources.env.client_secret` holds a secret value" in message
    assert "dynaconf vault loader" in message
    assert "N3XT_CLIENT_SECRET" in message


def test_lazy_values_are_read_as_the_app_reads_them(app):
    text = APP_SETTINGS.replace(
        'token_url = "https://authn.alpha.n3xt.io/v1/public/p-1/oauth2/token"',
        'token_url = "@format https://authn.alpha.n3xt.io/v1/public/{this.project}/oauth2/token"\n'
        'timeout = "@int 7"',
    ).replace("page_size = 50", 'page_size = 50\nproject = "p-9"')
    settings = load_dynaconf(app(text), environ={})
    assert settings.token_url == "https://authn.alpha.n3xt.io/v1/public/p-9/oauth2/token"
    assert settings.timeout == 7.0


def test_an_app_without_environments(tmp_path, monkeypatch):
    from dynaconf import Dynaconf

    monkeypatch.chdir(tmp_path)
    (tmp_path / "settings.toml").write_text(
        'page_size = 5\n[n3xt]\ntoken_url = "https://authn.alpha.n3xt.io/v1/public/p/oauth2/token"\n'
        "timeout = 3\n"
    )
    settings = load_dynaconf(
        Dynaconf(root_path=str(tmp_path), settings_files=["settings.toml"]), environ={}
    )
    assert settings.where == "settings.toml [n3xt]"
    assert settings.timeout == 3.0 and settings.origin("timeout") == "settings.toml [n3xt]"
