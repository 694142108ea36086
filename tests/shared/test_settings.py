"""[*.shared_cache] in settings: backend none|file|redis, directory, url_var; never a URL."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from n3xt_creds import ConfigError, FileTokenCache, RedisTokenCache
from n3xt_creds.settings import from_settings, load_settings

BASE = """
[default]
token_url = "https://authn.alpha.n3xt.io/v1/public/p-1/oauth2/token"
source = "env"
"""
ENVIRON = {"N3XT_CLIENT_ID": "id", "N3XT_CLIENT_SECRET": "s"}


def _write(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(BASE + textwrap.dedent(extra), encoding="utf-8")
    return path


def test_no_table_means_no_shared_cache(tmp_path: Path) -> None:
    auth = from_settings(_write(tmp_path, ""), environ=ENVIRON)
    assert auth.shared_cache is None
    assert auth.shared_cache_stats is None


def test_the_documented_template_selects_the_file_cache_in_its_default_directory(
    tmp_path: Path,
) -> None:
    path = _write(
        tmp_path,
        """
        [default.shared_cache]
        backend = "file"
        directory = ""
        url_var = "REDIS_URL"
        """,
    )
    auth = from_settings(path, environ=ENVIRON)
    assert isinstance(auth.shared_cache, FileTokenCache)
    assert auth.shared_cache.directory == FileTokenCache().directory
    rows = {key: value for key, value, _ in load_settings(path, environ=ENVIRON).effective()}
    assert rows["shared_cache.backend"] == "file"


def test_redis_takes_its_url_from_the_named_variable(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        [production.shared_cache]
        backend = "redis"
        url_var = "APP_REDIS"
        """,
    )
    environ = {**ENVIRON, "APP_REDIS": "redis://:pw@cache.internal:6379/2"}
    auth = from_settings(path, env="production", environ=environ)
    assert isinstance(auth.shared_cache, RedisTokenCache)
    assert "cache.internal" in repr(auth.shared_cache)
    with pytest.raises(ConfigError) as error:
        from_settings(path, env="production", environ=ENVIRON)
    message = str(error.value)
    assert "shared_cache.url_var" in message and "APP_REDIS" in message
    assert "settings.toml" in message


def test_the_backend_can_be_switched_by_a_variable(tmp_path: Path) -> None:
    environ = {**ENVIRON, "N3XT_CREDS_SHARED_CACHE__BACKEND": "file"}
    auth = from_settings(_write(tmp_path, ""), environ=environ)
    assert isinstance(auth.shared_cache, FileTokenCache)


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ('backend = "memcached"', "must be one of none, file, redis"),
        ('backend = "redis"\nurl = "redis://:pw@host"', "may carry a password"),
        ('url_var = "not a name"', "environment variable name"),
        ('backend = "file"\ndirectry = "/x"', "directry"),
    ],
)
def test_bad_tables_are_refused_with_the_key_named(tmp_path: Path, table: str, words: str) -> None:
    path = _write(tmp_path, "[default.shared_cache]\n" + table + "\n")
    with pytest.raises(ConfigError) as error:
        load_settings(path, environ=ENVIRON)
    assert words in str(error.value)
    assert "shared_cache" in str(error.value)
    assert "pw@" not in str(error.value)


def test_the_redis_timeout_is_a_setting(tmp_path: Path) -> None:
    path = _write(tmp_path, '[default.shared_cache]\nbackend = "redis"\ntimeout = 0.5\n')
    auth = from_settings(path, environ={**ENVIRON, "REDIS_URL": "redis://127.0.0.1:1/0"})
    assert isinstance(auth.shared_cache, RedisTokenCache)
    assert auth.shared_cache.timeout == 0.5
    with pytest.raises(ConfigError, match="shared_cache.timeout"):
        load_settings(_write(tmp_path, "[default.shared_cache]\ntimeout = 30\n"), environ=ENVIRON)
