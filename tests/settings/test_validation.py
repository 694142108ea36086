"""Every validation case: the message names the key, file and environment and helps.

A canary secret is used wherever a value could be echoed; no message may contain it.
"""

from __future__ import annotations

import pytest

from n3xt_creds import ConfigError
from n3xt_creds.settings import build_source, load_settings

CANARY = "canary-SECRET-4b1d9e77"

HEADER = """
[default]
token_url = "https://authn.alpha.n3xt.io/v1/public/p-1/oauth2/token"
"""


def _error(path, env=None, environ=None, *, build=False) -> ConfigError:
    def load() -> None:
        settings = load_settings(path, env, environ=environ or {})
        if build:
            build_source(settings)

    with pytest.raises(ConfigError) as caught:
        load()
    message = str(caught.value)
    assert CANARY not in message
    assert CANARY not in repr(caught.value.args)
    assert caught.value.__cause__ is None or CANARY not in str(caught.value.__cause__)
    return caught.value


# -- unknown keys, with the closest valid key suggested -----------------------------------


def test_unknown_top_level_key_suggests_closest(write_settings):
    path = write_settings(HEADER + 'tokn_url = "x"\n')
    error = _error(path)
    assert str(error).startswith(f"{path} [development]: `tokn_url` is not a known setting")
    assert "did you mean `token_url`?" in str(error)
    assert (error.key, error.path, error.env) == ("tokn_url", str(path), "development")


def test_unknown_key_from_variable_names_the_variable(write_settings):
    error = _error(write_settings(HEADER), environ={"N3XT_CREDS_SORCE": "env"})
    assert "`sorce` is not a known setting: did you mean `source`?" in str(error)
    assert "(set by environment variable N3XT_CREDS_SORCE)" in str(error)


def test_unknown_source_table_suggests_source(write_settings):
    path = write_settings(HEADER + '[default.sources.vualt]\npath = "x"\n')
    error = _error(path)
    assert f"{path} [development]: `sources.vualt`: did you mean `sources.vault`?" in str(error)
    assert "known sources: aws, env, file, vault" in str(error)


def test_unknown_key_in_source_table_suggests(write_settings):
    path = write_settings(HEADER + '[default.sources.env]\nclient_id_vr = "X"\n')
    error = _error(path, build=True)
    assert f"{path} [development]: `sources.env.client_id_vr` is not a known setting" in str(error)
    assert "did you mean `client_id_var`?" in str(error)


# -- wrong types and bad values ------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "key", "expected"),
    [
        ('timeout = "ten"', "timeout", "must be a number"),
        ("timeout = 0", "timeout", "must be greater than 0; got 0"),
        ("refresh_margin = -5", "refresh_margin", "must be greater than 0; got -5"),
        ("refresh_margin = 0", "refresh_margin", "must be greater than 0; got 0"),
        ("timeout = 1e12", "timeout", "must be at most 600; got 1e+12"),
        ("refresh_margin = 1e9", "refresh_margin", "must be at most 86400; got 1e+09"),
        ("api_hosts = [1, 2]", "api_hosts", "must be a list of non-empty strings"),
        ("api_hosts = []", "api_hosts", "must list at least one host pattern"),
        ("source = 3", "source", "must be a string, got int 3"),
        ("chain = []", "chain", "must name at least one source"),
        ('chain = ["env", "chain"]', "chain", "cannot contain `chain` itself"),
        ('chain = ["env", "env"]', "chain", "names a source twice"),
        ('chain = ["env", "fiel"]', "chain", "unknown source 'fiel' — did you mean `file`?"),
    ],
)
def test_wrong_types_and_values_name_key_file_env(write_settings, line, key, expected):
    path = write_settings(HEADER + "[production]\n" + line + "\n")
    error = _error(path, "production")
    assert str(error).startswith(f"{path} [production]: `{key}` ")
    assert expected in str(error)
    assert (error.key, error.env) == (key, "production")


def test_bad_value_from_variable_names_the_variable_not_the_value(write_settings):
    error = _error(write_settings(HEADER), environ={"N3XT_CREDS_TIMEOUT": CANARY})
    assert "`timeout` must be a number" in str(error)
    assert "(set by environment variable N3XT_CREDS_TIMEOUT)" in str(error)


def test_bad_dynaconf_cast_in_variable(write_settings):
    error = _error(write_settings(HEADER), environ={"N3XT_CREDS_TIMEOUT": f"@int {CANARY}"})
    assert str(error).startswith(
        "environment variable N3XT_CREDS_TIMEOUT: its value cannot be parsed"
    )


def test_malformed_nesting_in_variable(write_settings):
    error = _error(write_settings(HEADER), environ={"N3XT_CREDS_SOURCES____DIRECTORY": "/x"})
    assert "environment variable N3XT_CREDS_SOURCES____DIRECTORY: empty key part" in str(error)
    error = _error(write_settings(HEADER), environ={"N3XT_CREDS_TOKEN_URL__X": "1"})
    assert "nests under `token_url`, which is not a table" in str(error)


def test_bad_source_name_suggests(write_settings):
    path = write_settings(HEADER + 'source = "vualt"\n')
    error = _error(path)
    assert f"{path} [development]: `source` names an unknown source 'vualt'" in str(error)
    assert "did you mean `vault`?" in str(error)
    assert "Known sources: aws, env, file, vault, chain" in str(error)


def test_source_table_value_errors_come_from_the_source(write_settings):
    path = write_settings(
        HEADER + '[default.sources.env]\nclient_id_var = "SAME"\nclient_secret_var = "SAME"\n'
    )
    error = _error(path, build=True)
    assert str(error).startswith(
        f"{path} [development]: `sources.env.client_secret_var` is invalid"
    )
    assert "two different variables" in str(error)


# -- token_url -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://authn.alpha.n3xt.io/t", "must use https (plain http is allowed only to loopback"),
        ("https://authn.alpha.n3xt.io/v1/public/<project-id>/oauth2/token", "placeholder"),
        ("authn.alpha.n3xt.io/t", "must be an absolute https URL with a host"),
    ],
)
def test_token_url_checked(write_settings, url, expected):
    path = write_settings(f'[default]\ntoken_url = "{url}"\n')
    error = _error(path)
    assert str(error).startswith(f"{path} [development]: `token_url` ")
    assert expected in str(error)


@pytest.mark.parametrize("host", ["127.0.0.1:8400", "localhost", "[::1]:9"])
def test_token_url_plain_http_to_loopback_is_fine(write_settings, host):
    path = write_settings(f'[default]\ntoken_url = "http://{host}/t"\n')
    assert load_settings(path, environ={}).token_url == f"http://{host}/t"


def test_token_url_is_required(write_settings):
    path = write_settings('[default]\nsource = "env"\n')
    assert "`token_url` is required but not set" in str(_error(path))


# -- the file and the environment ------------------------------------------------------------


def test_missing_file_names_every_place_looked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    error = _error(None)
    message = str(error)
    assert f"settings file {tmp_path / 'settings.toml'} does not exist" in message
    assert "argument / --settings: not given" in message
    assert "N3XT_CREDS_SETTINGS: not set" in message
    assert "pass --settings FILE, set N3XT_CREDS_SETTINGS" in message
    assert "or run without a file by setting N3XT_CREDS_TOKEN_URL" in message


def test_missing_file_named_by_variable(tmp_path):
    named = tmp_path / "nope.toml"
    error = _error(None, environ={"N3XT_CREDS_SETTINGS": str(named)})
    assert f"settings file {named} does not exist (named by N3XT_CREDS_SETTINGS)" in str(error)


def test_unknown_environment_lists_the_files_environments(write_settings):
    path = write_settings(HEADER + "[production]\n[staging]\n")
    error = _error(path, "prod")
    assert str(error) == (
        f"{path}: environment 'prod' (given by --env or the env argument) is not in the file; "
        "it has: [default], [production], [staging]. Add a [prod] table or choose one of those."
    )
    error = _error(path, environ={"N3XT_CREDS_ENV": "stagin"})
    assert "environment 'stagin' (from N3XT_CREDS_ENV)" in str(error)


def test_implicit_development_may_be_absent(write_settings):
    assert load_settings(write_settings(HEADER), environ={}).env == "development"


def test_toml_syntax_error_names_file_and_line(write_settings):
    path = write_settings(HEADER + f'source = "env"\ntimeout = = "{CANARY}"\n')
    error = _error(path)
    assert str(error).startswith(f"{path}: not valid TOML: ")
    assert "line 5" in str(error)
    assert "Traceback" not in str(error)


def test_top_level_key_outside_environment(write_settings):
    path = write_settings('token_url = "https://a.n3xt.io/t"\n' + HEADER)
    error = _error(path)
    assert "top-level key `token_url` is outside any environment table" in str(error)


# -- secrets ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (f'client_secret = "{CANARY}"\n', "client_secret"),
        (f'access_token = "{CANARY}"\n', "access_token"),
        (f'[default.sources.env]\nclient_secret = "{CANARY}"\n', "sources.env.client_secret"),
        (f'[default.sources.file]\npassword = "{CANARY}"\n', "sources.file.password"),
    ],
)
def test_secret_values_are_refused_and_not_echoed(write_settings, text, key):
    path = write_settings(HEADER + text)
    error = _error(path, build=True)
    assert f"`{key}` holds a secret value" in str(error)
    assert "belongs in the N3XT_CLIENT_SECRET variable" in str(error)
    assert "Vault ('vault') or AWS Secrets Manager ('aws')" in str(error)


def test_secret_value_from_variable_is_refused(write_settings):
    error = _error(write_settings(HEADER), environ={"N3XT_CREDS_CLIENT_SECRET": CANARY})
    assert "`client_secret` holds a secret value" in str(error)
    assert "(found in: environment variable N3XT_CREDS_CLIENT_SECRET)" in str(error)
