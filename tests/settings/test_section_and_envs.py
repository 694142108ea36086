"""A file the app shares (section=), no file at all, every environment validated,
source names forgiving of case, missing extras, bounds on nesting and numbers."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import n3xt_creds
from n3xt_creds import ConfigError
from n3xt_creds.settings import check_environments, load_settings
from n3xt_creds.sources.options import is_secret_key

CANARY = "canary-SECRET-5ec7e1d0"
URL = "https://authn.alpha.n3xt.io/v1/public/p-1/oauth2/token"

SHARED = f"""
[default]
api_base_url = "https://api.example.test"   # the app's keys: left alone
workers = 4

[default.n3xt]
token_url = "{URL}"

[production]
workers = 16

[production.n3xt]
dynaconf_merge = true   # the app's dynaconf needs it; for us tables always deep-merge
source = "file"

[production.n3xt.sources.file]
directory = "/run/secrets/n3xt"
"""


def test_section_reads_only_our_tables_of_a_shared_file(write_settings):
    path = write_settings(SHARED)
    settings = load_settings(path, "production", section="n3xt", environ={})
    assert settings.source == "file"
    assert settings.where == f"{path} [production.n3xt]"
    assert settings.origin("token_url") == f"{path} [default.n3xt]"
    assert settings.origin("source") == f"{path} [production.n3xt]"


def test_section_errors_name_the_section_table(write_settings):
    path = write_settings(SHARED + "\n[development.n3xt]\nsorce = 'env'\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, section="n3xt", environ={})
    assert str(info.value).startswith(f"{path} [development.n3xt]: `sorce`")
    assert "did you mean `source`?" in str(info.value)


def test_shared_cache_errors_name_the_section_table_too(write_settings):
    path = write_settings(SHARED + "\n[development.n3xt.shared_cache]\nbackend = 'redsi'\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, section="n3xt", environ={})
    assert str(info.value).startswith(f"{path} [development.n3xt]: `shared_cache.backend`")


def test_section_from_the_cli(write_settings):
    path = write_settings(SHARED)
    result = _cli("config", "--settings", str(path), "--env", "production", "--section", "n3xt")
    assert result.returncode == 0, result.stderr
    assert "[production.n3xt]" in result.stdout
    assert "api_base_url" not in result.stdout and "workers" not in result.stdout


def test_without_a_file_the_variables_are_enough(tmp_path, monkeypatch):
    environ = {"N3XT_CREDS_TOKEN_URL": URL, "N3XT_CLIENT_ID": "id", "N3XT_CLIENT_SECRET": "s"}
    monkeypatch.chdir(tmp_path)  # no ./settings.toml here
    settings = load_settings(environ=environ)
    with n3xt_creds.from_settings(environ=environ) as auth:
        assert auth.source.get_credentials().client_id == "id"
    assert settings.path is None
    assert "N3XT_CREDS_TOKEN_URL is set" in settings.path_reason
    assert settings.source == "env" and settings.origin("source") == "built-in default"


def test_dev_null_means_no_file_not_a_directory(tmp_path):
    settings = load_settings(
        environ={"N3XT_CREDS_SETTINGS": os.devnull, "N3XT_CREDS_TOKEN_URL": URL}
    )
    assert settings.path is None and os.devnull in settings.path_reason
    with pytest.raises(ConfigError, match="`token_url` is required but not set"):
        load_settings(environ={"N3XT_CREDS_SETTINGS": os.devnull})


def test_a_fifo_or_directory_is_named_for_what_it_is(tmp_path):
    fifo = tmp_path / "settings.toml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="is not a regular file"):
        load_settings(fifo, environ={})
    with pytest.raises(ConfigError, match="is a directory"):
        load_settings(tmp_path, environ={})


def test_a_typo_in_default_source_table_fails_in_development_too(write_settings):
    path = write_settings(
        f"""
        [default]
        token_url = "{URL}"
        [default.sources.vault]
        auth_methd = "approle"
        [production]
        source = "vault"
        """
    )
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})  # development: vault is not selected
    assert "`sources.vault.auth_methd` is not a known setting" in str(info.value)
    assert "did you mean `auth_method`?" in str(info.value)


def test_other_environments_are_validated_from_any_one(write_settings):
    path = write_settings(
        f"""
        [default]
        token_url = "{URL}"
        [production]
        source = "vault"
        [production.sources.vault]
        kv_version = 3
        """
    )
    with pytest.raises(ConfigError, match=r"\[production\]: `sources.vault.kv_version` must be"):
        load_settings(path, environ={})


def test_check_environments_reports_each_without_network(write_settings):
    path = write_settings(
        f"""
        [default]
        token_url = "https://authn.alpha.n3xt.io/v1/public/<project-id>/oauth2/token"
        [development]
        token_url = "{URL}"
        [staging]
        timeout = 1e12
        [production]
        source = "vault"
        [production.sources.vault]
        auth_method = "kubernetes"   # role set per cluster by variable: not required here
        """
    )
    results = dict(check_environments(path, environ={}))
    assert set(results) == {"default", "development", "staging", "production"}
    assert results["development"] is None and results["production"] is None
    assert "`timeout` must be at most 600" in str(results["staging"])
    result = _cli("check", "--all-envs", "--settings", str(path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "[ok  ] production" in result.stdout
    assert "[FAIL] staging" in result.stdout


@pytest.mark.parametrize("written", ["Vault", " VAULT ", "vault"])
def test_source_names_ignore_case(write_settings, written):
    path = write_settings(f'[default]\ntoken_url = "{URL}"\nsource = "{written}"\n')
    assert load_settings(path, environ={}).source == "vault"


def test_unknown_source_suggests_the_closest(write_settings):
    path = write_settings(f'[default]\ntoken_url = "{URL}"\nsource = "Vualt"\n')
    with pytest.raises(ConfigError, match="did you mean `vault`"):
        load_settings(path, environ={})


@pytest.mark.parametrize(("source", "module"), [("vault", "hvac"), ("aws", "boto3")])
def test_missing_extra_is_a_config_error_naming_it(write_settings, source, module):
    path = write_settings(f'[default]\ntoken_url = "{URL}"\nsource = "{source}"\n')
    code = (
        f"import sys; sys.modules[{module!r}] = None\n"
        "from n3xt_creds.cli import main\n"
        f"sys.exit(main(['token', '--settings', {str(path)!r}]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"pip install 'n3xt-creds[{source}]'" in result.stderr
    assert result.stderr.count("\n") == 1  # one line


@pytest.mark.parametrize(
    ("key", "source", "secret"),
    [
        ("client_secret_value", "vault", True),
        ("db_password_2", "aws", True),
        ("client_secret", None, True),
        ("secret_id", "vault", True),
        ("token", "vault", True),
        ("aws_secret_access_key", "aws", True),
        ("api_key", "plugin", True),
        ("client_secret_var", "env", False),
        ("client_secret_key", "vault", False),
        ("secret_id_file", "vault", False),
        ("token_file", "vault", False),
        ("token_url", None, False),
        ("secret_id", "aws", False),
    ],
)
def test_one_secret_key_rule(key, source, secret):
    assert is_secret_key(key, source=source) is secret


@pytest.mark.parametrize(
    ("table", "key"),
    [("vault", "client_secret_value"), ("aws", "db_password_2")],
)
def test_secret_in_an_unselected_table_is_refused_and_never_printed(write_settings, table, key):
    path = write_settings(
        f'[default]\ntoken_url = "{URL}"\n[default.sources.{table}]\n{key} = "{CANARY}"\n'
    )
    with pytest.raises(ConfigError, match="holds a secret value") as info:
        load_settings(path, environ={})
    assert CANARY not in str(info.value)
    result = _cli("config", "--settings", str(path))
    assert result.returncode == 2
    assert CANARY not in result.stdout + result.stderr


def test_deeply_nested_toml_is_a_config_error_naming_the_file(tmp_path):
    path = tmp_path / "settings.toml"
    path.write_text("[default]\nx = " + "[" * 100_000 + "]" * 100_000 + "\n")
    result = _cli("config", "--settings", str(path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "RecursionError" not in result.stderr
    assert str(path) in result.stderr and "nested too deeply" in result.stderr
    deep = tmp_path / "deep.toml"
    deep.write_text("[" + ".".join(["a"] * 40) + "]\nx = 1\n")
    with pytest.raises(ConfigError, match="nested more than 12 levels"):
        load_settings(deep, environ={})


def test_numbers_are_bounded_in_the_constructor_too():
    source = n3xt_creds.EnvSource(environ={})
    with pytest.raises(ConfigError, match="timeout must be at most 600 seconds"):
        n3xt_creds.Authenticator(source, token_url=URL, timeout=1e12)
    with pytest.raises(ConfigError, match="refresh_margin must be at most 86400"):
        n3xt_creds.Authenticator(source, token_url=URL, refresh_margin=1e7)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("N3XT_")}
    return subprocess.run(
        [sys.executable, "-m", "n3xt_creds.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def test_global_table_and_local_file_layer_like_dynaconf(write_settings, tmp_path):
    path = write_settings(
        f"""
        [default]
        token_url = "{URL}"
        timeout = 3
        [production]
        timeout = 4
        source = "file"
        [global]
        refresh_margin = 90
        """
    )
    (tmp_path / "settings.local.toml").write_text("[production]\ntimeout = 5\n")
    settings = load_settings(path, "production", environ={})
    assert "global" not in settings.environments
    assert settings.refresh_margin == 90.0
    assert settings.origin("refresh_margin") == f"{path} [global]"
    assert settings.timeout == 5.0
    assert settings.origin("timeout") == f"{tmp_path / 'settings.local.toml'} [production]"
    assert settings.source == "file"


@pytest.mark.parametrize(
    ("table", "line"),
    [
        ("vault", "timeout = 1e12"),
        ("aws", "max_attempts = 10000000000"),
        ("aws", "read_timeout = 1e300"),
    ],
)
def test_source_numbers_are_bounded_in_every_environment(write_settings, table, line):
    path = write_settings(f'[default]\ntoken_url = "{URL}"\n[default.sources.{table}]\n{line}\n')
    with pytest.raises(ConfigError, match=r"must be at most"):
        load_settings(path, environ={})


def test_secret_in_our_variable_names_the_variable_it_belongs_in(write_settings):
    path = write_settings(f'[default]\ntoken_url = "{URL}"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={"N3XT_CREDS_CLIENT_SECRET": CANARY})
    message = str(info.value)
    assert CANARY not in message
    assert "found in: environment variable N3XT_CREDS_CLIENT_SECRET" in message
    assert "belongs in the N3XT_CLIENT_SECRET variable" in message


def test_a_shared_file_follows_env_for_dynaconf(write_settings):
    path = write_settings(SHARED)
    settings = load_settings(path, section="n3xt", environ={"ENV_FOR_DYNACONF": "Production"})
    assert settings.env == "production" and settings.source == "file"
    assert "from ENV_FOR_DYNACONF" in settings.env_reason
    ours = {"ENV_FOR_DYNACONF": "production", "N3XT_CREDS_ENV": "default"}
    assert load_settings(path, section="n3xt", environ=ours).env == "default"
    # Our own file (no section) has its own selector only.
    plain = write_settings(f'[default]\ntoken_url = "{URL}"\n', name="own.toml")
    assert load_settings(plain, environ={"ENV_FOR_DYNACONF": "production"}).env == "development"


def test_our_section_of_dot_secrets_toml_is_read_and_a_secret_there_refused(
    write_settings, tmp_path
):
    path = write_settings(SHARED)
    (tmp_path / ".secrets.toml").write_text(
        f'[default]\ndb_password = "{CANARY}"   # the app\'s: not ours, left alone\n'
    )
    assert load_settings(path, section="n3xt", environ={}).source == "env"
    (tmp_path / ".secrets.toml").write_text(
        f'[production.n3xt.sources.file]\nclient_secret = "{CANARY}"\n'
    )
    with pytest.raises(ConfigError) as info:
        load_settings(path, section="n3xt", environ={})  # development: still refused
    message = str(info.value)
    assert CANARY not in message
    assert f"{tmp_path / '.secrets.toml'} [production.n3xt]" in message
