"""Building the AWS source from its settings table, and refusing bad arguments early."""

from __future__ import annotations

from typing import Any

import pytest

from n3xt_creds import AwsSecretsManagerSource, ConfigError
from n3xt_creds.sources.aws import from_options
from n3xt_creds.sources.options import SourceOptions

pytestmark = pytest.mark.aws


def options(**table: Any) -> SourceOptions:
    return SourceOptions(table, prefix="sources.aws", path="settings.toml", env="production")


def test_every_key_is_read() -> None:
    source = from_options(
        options(
            secret_id="n3xt/id",
            client_secret_id="n3xt/secret",
            region_name="eu-west-1",
            profile_name="payments",
            endpoint_url="https://vpce-1.secretsmanager.eu-west-1.vpce.amazonaws.com",
            version_stage="AWSPREVIOUS",
            client_id_key="id",
            client_secret_key="secret",
            max_attempts="5",  # environment overrides arrive as strings
            connect_timeout=1,
            read_timeout="2.5",
        )
    )

    assert (source.secret_id, source.client_secret_id) == ("n3xt/id", "n3xt/secret")
    assert (source.region_name, source.profile_name) == ("eu-west-1", "payments")
    assert source.endpoint_url == "https://vpce-1.secretsmanager.eu-west-1.vpce.amazonaws.com"
    assert (source.version_stage, source.version_id) == ("AWSPREVIOUS", None)
    assert (source.client_id_key, source.client_secret_key) == ("id", "secret")
    assert (source.retry.max_attempts, source.connect_timeout, source.read_timeout) == (5, 1.0, 2.5)


def test_defaults() -> None:
    source = from_options(options(secret_id="n3xt/api"))

    assert source.version_stage == "AWSCURRENT"
    assert (source.client_id_key, source.client_secret_key) == ("client_id", "client_secret")
    assert source.retry.max_attempts == 3
    assert (
        source.describe() == "aws (secret 'n3xt/api', region (from AWS config), stage AWSCURRENT)"
    )


def test_secret_id_defaults_to_the_path_vault_reads() -> None:
    assert from_options(options(region_name="eu-west-1")).secret_id == "n3xt/api"
    assert AwsSecretsManagerSource(region_name="eu-west-1").secret_id == "n3xt/api"


def test_aws_region_is_honoured_when_aws_default_region_is_unset(monkeypatch, tmp_path) -> None:
    """boto3 reads AWS_DEFAULT_REGION and ~/.aws/config, not AWS_REGION; we fill in."""
    import boto3

    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "absent-config"))
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
    source = from_options(
        SourceOptions({}, prefix="sources.aws", environ={"AWS_REGION": "eu-central-1"})
    )
    assert "region eu-central-1" in source.describe()
    source = AwsSecretsManagerSource(session=session, environ={"AWS_REGION": "eu-central-1"})
    assert source._get_client().meta.region_name == "eu-central-1"

    both = {"AWS_DEFAULT_REGION": "us-west-2", "AWS_REGION": "eu-central-1"}
    assert "region (from AWS config)" in AwsSecretsManagerSource(environ=both).describe()
    assert (
        "region eu-west-1"
        in AwsSecretsManagerSource(region_name="eu-west-1", environ=both).describe()
    )


def test_unknown_key_suggests_the_right_one() -> None:
    with pytest.raises(ConfigError, match=r"`sources.aws.region` .* did you mean `region_name`"):
        from_options(options(secret_id="n3xt/api", region="eu-west-1"))


@pytest.mark.parametrize("key", ["aws_secret_access_key", "aws_access_key_id", "aws_session_token"])
def test_aws_keys_in_settings_are_refused_without_echoing_them(key: str) -> None:
    with pytest.raises(ConfigError, match="holds a secret value") as caught:
        from_options(options(secret_id="n3xt/api", **{key: "AKIAEXAMPLEVALUE1234"}))

    assert "AKIAEXAMPLEVALUE1234" not in str(caught.value)
    assert caught.value.key == f"sources.aws.{key}"


@pytest.mark.parametrize(
    ("table", "key", "problem"),
    [
        ({"version_stage": "AWSPENDING"}, "version_stage", "AWSPENDING is refused"),
        ({"version_id": "v1", "version_stage": "AWSPREVIOUS"}, "version_id", "not both"),
        ({"version_id": "v1", "client_secret_id": "n3xt/s"}, "version_id", "cannot apply to two"),
        ({"endpoint_url": "secretsmanager.local"}, "endpoint_url", "must be an http(s) URL"),
        ({"client_secret_id": "n3xt/api"}, "client_secret_id", "is the same secret"),
        ({"client_id_key": "k", "client_secret_key": "k"}, "client_secret_key", "two different"),
        ({"max_attempts": 0}, "max_attempts", "must be greater than 0"),
        ({"read_timeout": "soon"}, "read_timeout", "must be a number"),
        ({"region_name": 42}, "region_name", "must be a string"),
    ],
)
def test_invalid_settings_name_the_key_file_and_environment(
    table: dict[str, Any], key: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        from_options(options(secret_id="n3xt/api", **table))

    assert caught.value.key == f"sources.aws.{key}"
    assert str(caught.value).startswith("settings.toml [production]: `sources.aws.")
    assert problem in str(caught.value)


def test_constructor_refuses_arguments_an_injected_client_already_has() -> None:
    client: Any = object()
    with pytest.raises(ConfigError, match="injected client already has its region_name"):
        AwsSecretsManagerSource("n3xt/api", client=client, region_name="eu-west-1")
    with pytest.raises(ConfigError, match="injected session already has its profile"):
        AwsSecretsManagerSource("n3xt/api", session=object(), profile_name="payments")


@pytest.mark.parametrize("bad", ["", "   ", None, 7])
def test_constructor_refuses_an_empty_secret_id(bad: Any) -> None:
    with pytest.raises(ConfigError, match="secret_id must be a non-empty string"):
        AwsSecretsManagerSource(bad)
