"""SourceOptions: typed getters whose errors name the key, the file and the environment."""

from __future__ import annotations

from typing import Any

import pytest

from n3xt_creds import ConfigError
from n3xt_creds.sources.options import SourceOptions

CANARY = "canary-options-91c4-never-show"


def opts(**table: Any) -> SourceOptions:
    return SourceOptions(table, prefix="sources.vault", path="settings.toml", env="production")


def test_typed_getters_return_values_and_defaults() -> None:
    o = opts(path="n3xt/api", kv_version=1, timeout=2, verify=False, hosts=["a", "b"])
    assert o.get_str("path") == "n3xt/api"
    assert o.get_int("kv_version", choices=(1, 2)) == 1
    assert o.get_float("timeout", positive=True) == 2.0
    assert o.get_bool("verify") is False
    assert o.get_str_list("hosts") == ["a", "b"]
    assert o.get_str("mount_point", "secret") == "secret"
    assert o.get_str("namespace", None) is None
    o.finish()


def test_strings_from_environment_variables_are_cast() -> None:
    o = opts(kv_version="2", timeout="1.5", verify="true", hosts="a, b")
    assert o.get_int("kv_version") == 2
    assert o.get_float("timeout") == 1.5
    assert o.get_bool("verify") is True
    assert o.get_str_list("hosts") == ["a", "b"]


@pytest.mark.parametrize(
    ("table", "call", "message"),
    [
        ({}, lambda o: o.get_str("path"), "`sources.vault.path` is required but not set"),
        (
            {"path": 3},
            lambda o: o.get_str("path"),
            "`sources.vault.path` must be a string, got int 3",
        ),
        ({"path": " "}, lambda o: o.get_str("path"), "must not be empty"),
        (
            {"auth_method": "aprole"},
            lambda o: o.get_str("auth_method", choices=("token", "approle")),
            "must be one of token, approle; got 'aprole' — did you mean `approle`?",
        ),
        (
            {"kv_version": 3},
            lambda o: o.get_int("kv_version", choices=(1, 2)),
            "must be one of 1, 2; got 3",
        ),
        (
            {"kv_version": True},
            lambda o: o.get_int("kv_version"),
            "must be an integer, got bool True",
        ),
        (
            {"timeout": "soon"},
            lambda o: o.get_float("timeout"),
            "must be a number, got a string that is not one",
        ),
        (
            {"timeout": 0},
            lambda o: o.get_float("timeout", positive=True),
            "must be greater than 0; got 0",
        ),
        ({"timeout": float("nan")}, lambda o: o.get_float("timeout"), "must be a finite number"),
        ({"verify": "maybe"}, lambda o: o.get_bool("verify"), "must be true or false, got str"),
        ({"hosts": [1]}, lambda o: o.get_str_list("hosts"), "must be a list of non-empty strings"),
    ],
)
def test_errors_name_key_file_and_environment(
    table: dict[str, Any], call: Any, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        call(opts(**table))
    text = str(info.value)
    assert text.startswith("settings.toml [production]: ")
    assert message in text
    assert info.value.path == "settings.toml"
    assert info.value.env == "production"
    assert info.value.key is not None and info.value.key.startswith("sources.vault.")


def test_unknown_key_suggests_the_closest() -> None:
    o = opts(mount_pont="secret")
    o.get_str("mount_point", "secret")
    o.get_str("path", "n3xt/api")
    with pytest.raises(
        ConfigError,
        match="`sources.vault.mount_pont` is not a known setting: did you mean `mount_point`",
    ):
        o.finish()


def test_secret_values_are_refused_without_echoing_them() -> None:
    for key in ("client_secret", "token", "secret_id", "aws_secret_access_key", "password"):
        o = opts(**{key: CANARY})
        with pytest.raises(ConfigError, match="holds a secret value") as info:
            o.finish()
        assert CANARY not in str(info.value)
        assert "variable" in str(info.value)  # it names where the secret belongs


def test_not_secret_refuses_a_named_key() -> None:
    o = opts(secret_id=CANARY)
    with pytest.raises(ConfigError, match="`sources.vault.secret_id` holds a secret value") as info:
        o.not_secret("secret_id")
    assert CANARY not in str(info.value)


def test_wrong_typed_string_values_are_never_echoed() -> None:
    with pytest.raises(ConfigError) as info:
        opts(kv_version=CANARY).get_int("kv_version")
    assert CANARY not in str(info.value)
