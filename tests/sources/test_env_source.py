"""EnvSource: every way two variables can be set wrong has its own error."""

from __future__ import annotations

import pytest

from n3xt_creds import ConfigError, CredentialsNotFoundError, EnvSource, SourceError

CANARY = "canary-env-5d1b-never-show"


def source(**environ: str) -> EnvSource:
    return EnvSource(environ=environ)


def test_reads_both_variables_and_strips_whitespace() -> None:
    creds = source(
        N3XT_CLIENT_ID=" my-client\n", N3XT_CLIENT_SECRET=CANARY + "\n"
    ).get_credentials()
    assert creds.client_id == "my-client"
    assert creds.client_secret.get_secret_value() == CANARY
    assert creds.source == "env:N3XT_CLIENT_ID"


def test_custom_variable_names() -> None:
    env = EnvSource("APP_ID", "APP_SECRET", environ={"APP_ID": "a", "APP_SECRET": "b"})
    assert env.get_credentials().client_id == "a"


def test_reads_os_environ_at_each_call(monkeypatch: pytest.MonkeyPatch) -> None:
    env = EnvSource("N3XT_TEST_LATE_ID", "N3XT_TEST_LATE_SECRET")
    with pytest.raises(CredentialsNotFoundError):
        env.get_credentials()
    monkeypatch.setenv("N3XT_TEST_LATE_ID", "late")
    monkeypatch.setenv("N3XT_TEST_LATE_SECRET", CANARY)
    assert env.get_credentials().client_id == "late"


def test_both_unset_is_not_found_and_names_both_variables() -> None:
    with pytest.raises(CredentialsNotFoundError) as info:
        source().get_credentials()
    assert "N3XT_CLIENT_ID" in str(info.value)
    assert "N3XT_CLIENT_SECRET" in str(info.value)
    assert info.value.looked_for == ("N3XT_CLIENT_ID", "N3XT_CLIENT_SECRET")
    assert info.value.source == "env"


def test_only_id_set_names_the_missing_secret_variable() -> None:
    with pytest.raises(SourceError, match="N3XT_CLIENT_ID is set but N3XT_CLIENT_SECRET is not"):
        source(N3XT_CLIENT_ID="x").get_credentials()


def test_only_secret_set_names_the_missing_id_variable() -> None:
    with pytest.raises(
        SourceError, match="N3XT_CLIENT_SECRET is set but N3XT_CLIENT_ID is not"
    ) as info:
        source(N3XT_CLIENT_SECRET=CANARY).get_credentials()
    assert CANARY not in str(info.value)


@pytest.mark.parametrize(("value", "state"), [("", "empty"), ("  \n\t", "only whitespace")])
def test_blank_values_say_so(value: str, state: str) -> None:
    with pytest.raises(SourceError, match=f"N3XT_CLIENT_SECRET is set but {state}"):
        source(N3XT_CLIENT_ID="x", N3XT_CLIENT_SECRET=value).get_credentials()
    with pytest.raises(SourceError, match=f"N3XT_CLIENT_ID is set but {state}"):
        source(N3XT_CLIENT_ID=value, N3XT_CLIENT_SECRET=CANARY).get_credentials()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"client_id_var": ""}, "client_id_var must be a non-empty string"),
        ({"client_secret_var": " "}, "client_secret_var must be a non-empty string"),
        ({"client_id_var": "SAME", "client_secret_var": "SAME"}, "need two different variables"),
    ],
)
def test_bad_variable_names_are_config_errors(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        EnvSource(**kwargs)


def test_describe_and_repr_name_variables_only() -> None:
    env = source(N3XT_CLIENT_ID="x", N3XT_CLIENT_SECRET=CANARY)
    assert env.describe() == "env (variables N3XT_CLIENT_ID, N3XT_CLIENT_SECRET)"
    assert CANARY not in repr(env)
