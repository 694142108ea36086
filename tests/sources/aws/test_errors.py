"""Every way reading the secret can fail, each with its own error and next step.

Where each failure comes from (the issue asks to say):

* moto's server, for real: secret missing, stage missing, version id missing,
  secret marked for deletion, SecretBinary, malformed SecretString, and access
  denied by moto's IAM policy evaluation;
* the fault proxy (a real HTTP server in front of moto answering in Secrets Manager's
  JSON error format): AccessDeniedException, DecryptionFailure, ThrottlingException,
  InternalServiceError, a request that never gets an answer, a dropped connection.
  moto cannot produce these on demand; botocore's Stubber is not used anywhere, because
  it short-circuits the HTTP layer and with it the retries these tests count;
* a closed loopback port: the endpoint unreachable.
"""

from __future__ import annotations

import json
import traceback
import urllib.request
from typing import Any

import pytest

from n3xt_creds import CredentialsNotFoundError, RetryPolicy, SourceError
from tests.sources._secrecy import assert_nothing_reachable

pytestmark = pytest.mark.aws

CANARY = "canary-9f8e7d-do-not-print"


def assert_no_leak(exc: BaseException) -> None:
    """The secret appears nowhere in the error, its chain, its printed traceback, the
    frame locals of that traceback (what crash reporters capture) or the attributes of
    anything in its context chain."""
    assert exc.__cause__ is None
    assert exc.__context__ is None
    printed = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    for text in (str(exc), repr(exc), printed):
        assert CANARY not in text
    assert_nothing_reachable(exc, CANARY)


# -- the secret is not there: CredentialsNotFoundError ("try the next source") ------------


def test_missing_secret_is_not_found_naming_the_secret(make_source, fault_proxy) -> None:
    """moto: ResourceNotFoundException for an unknown secret id."""
    with pytest.raises(CredentialsNotFoundError) as caught:
        make_source("n3xt/absent").get_credentials()

    message = str(caught.value)
    assert "secret 'n3xt/absent'" in message
    assert "stage AWSCURRENT" in message
    assert "ResourceNotFoundException" in message
    assert caught.value.looked_for == ("aws secret n3xt/absent (stage AWSCURRENT)",)
    assert caught.value.source == "aws"
    assert len(fault_proxy.calls()) == 1  # not retried


def test_missing_stage_is_not_found_naming_the_stage(sm, put, make_source) -> None:
    """moto: ResourceNotFoundException for a stage no version carries."""
    put(sm, client_id="app", client_secret="value")

    with pytest.raises(CredentialsNotFoundError, match=r"'n3xt/api' \(stage AWSPREVIOUS"):
        make_source(version_stage="AWSPREVIOUS").get_credentials()


def test_missing_version_id_is_not_found_naming_the_version(sm, put, make_source) -> None:
    """moto: ResourceNotFoundException for an unknown VersionId."""
    put(sm, client_id="app", client_secret="value")
    version = "00000000-0000-4000-8000-000000000000"

    with pytest.raises(CredentialsNotFoundError, match=f"version {version}"):
        make_source(version_id=version).get_credentials()


def test_secret_marked_for_deletion_is_not_found_and_says_so(sm, put, make_source) -> None:
    """moto: InvalidRequestException for a secret scheduled for deletion."""
    put(sm, client_id="app", client_secret="value")
    sm.delete_secret(SecretId="n3xt/api", RecoveryWindowInDays=7)

    with pytest.raises(CredentialsNotFoundError, match="marked for deletion") as caught:
        make_source().get_credentials()

    assert "restore-secret --secret-id n3xt/api" in str(caught.value)


# -- denied: SourceError, not retried --------------------------------------------------


def test_access_denied_by_moto_iam_policy(sm, put, make_source, aws_session, fault_proxy, moto_url):
    """moto with IAM enforcement on: a policy allowing another secret only → denied.

    moto answers the denial in its generic XML shape (HTTP 403, code "403") rather than
    Secrets Manager's AccessDeniedException JSON; the next test covers that shape.
    """
    arn = put(sm, client_id="app", client_secret="value")
    iam = aws_session.client("iam", endpoint_url=moto_url)
    iam.create_user(UserName="app")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": arn + "x"}
        ],
    }
    iam.put_user_policy(UserName="app", PolicyName="other", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="app")["AccessKey"]
    import boto3

    app_session = boto3.Session(
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
        region_name="us-east-1",
    )
    _set_moto_auth(moto_url, "0")  # enforce IAM from the next request on
    try:
        with pytest.raises(SourceError, match="access denied") as caught:
            make_source(session=app_session).get_credentials()
    finally:
        _set_moto_auth(moto_url, "inf")

    assert "secretsmanager:GetSecretValue" in str(caught.value)
    assert not caught.value.retryable
    assert len(fault_proxy.calls()) == 1


def _set_moto_auth(moto_url: str, count: str) -> None:
    request = urllib.request.Request(
        f"{moto_url}/moto-api/reset-auth",
        data=count.encode(),
        method="POST",
        headers={"Content-Type": "text/plain"},  # a form body would reach moto empty
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def test_access_denied_exception_hints_iam_and_is_not_retried(make_source, fault_proxy) -> None:
    """Fault proxy: Secrets Manager's AccessDeniedException (HTTP 400 JSON), which moto cannot send."""
    fault_proxy.fail("AccessDeniedException", 400, count=5)

    with pytest.raises(SourceError) as caught:
        make_source(retry=RetryPolicy(max_attempts=5)).get_credentials()

    message = str(caught.value)
    assert "access denied" in message
    assert "AccessDeniedException" in message
    assert "IAM identity" in message
    assert not caught.value.retryable
    assert len(fault_proxy.calls()) == 1


def test_decryption_failure_hints_kms_and_is_not_retried(make_source, fault_proxy) -> None:
    """Fault proxy: DecryptionFailure (KMS key unusable), which moto cannot produce."""
    fault_proxy.fail("DecryptionFailure", 400, count=5)

    with pytest.raises(SourceError) as caught:
        make_source(retry=RetryPolicy(max_attempts=5)).get_credentials()

    assert "kms:Decrypt" in str(caught.value)
    assert not caught.value.retryable
    assert len(fault_proxy.calls()) == 1


# -- transient: retried within the source's RetryPolicy, then a retryable SourceError ----


def test_throttling_is_retried_within_the_policy_then_succeeds(sm, put, make_source, fault_proxy):
    """Fault proxy: two ThrottlingExceptions, then moto answers; the backoff is the
    core's full jitter from base_delay (botocore's own retries are off)."""
    put(sm, client_id="app", client_secret="value")
    fault_proxy.fail("ThrottlingException", 400, count=2)
    delays: list[float] = []

    policy = RetryPolicy(max_attempts=3, base_delay=0.5, max_delay=5.0)
    credentials = make_source(retry=policy, sleep=delays.append).get_credentials()

    assert credentials.client_id == "app"
    assert len(fault_proxy.calls()) == 3
    assert len(delays) == 2
    assert 0 <= delays[0] <= 0.5 and 0 <= delays[1] <= 1.0


def test_no_retry_starts_after_the_policy_deadline(make_source, fault_proxy) -> None:
    """A clock that has already run past the deadline at the first failure: one call only."""
    fault_proxy.fail("ThrottlingException", 400, count=5)
    readings = iter(range(0, 100, 10))

    policy = RetryPolicy(max_attempts=5, base_delay=0.1, deadline=5.0)
    with pytest.raises(SourceError, match=r"after 1 attempt\(s\)") as caught:
        make_source(retry=policy, clock=lambda: float(next(readings))).get_credentials()

    assert caught.value.retryable
    assert len(fault_proxy.calls()) == 1


@pytest.mark.parametrize(
    ("code", "status"), [("ThrottlingException", 400), ("InternalServiceError", 500)]
)
def test_transient_errors_stop_after_max_attempts(make_source, fault_proxy, code, status):
    """Fault proxy: the error on every attempt (moto cannot throttle or fail)."""
    fault_proxy.fail(code, status, count=10)

    with pytest.raises(SourceError) as caught:
        make_source(retry=RetryPolicy(max_attempts=2)).get_credentials()

    assert caught.value.retryable
    assert code in str(caught.value)
    assert "after 2 attempt(s)" in str(caught.value)
    assert len(fault_proxy.calls()) == 2


def test_read_timeout_is_retried_then_retryable_source_error(make_source, fault_proxy) -> None:
    """Fault proxy: requests that get no answer; read_timeout ends each attempt."""
    fault_proxy.hang(count=2)

    with pytest.raises(SourceError, match="timed out") as caught:
        make_source(retry=RetryPolicy(max_attempts=2), read_timeout=0.3).get_credentials()

    assert caught.value.retryable
    assert len(fault_proxy.calls()) == 2


def test_dropped_connection_is_retried_then_succeeds(sm, put, make_source, fault_proxy) -> None:
    """Fault proxy: the first connection closes without an answer."""
    put(sm, client_id="app", client_secret="value")
    fault_proxy.disconnect(count=1)

    assert make_source(retry=RetryPolicy(max_attempts=2)).get_credentials().client_id == "app"
    assert len(fault_proxy.calls()) == 2


def test_unreachable_endpoint_is_retryable_source_error_naming_it() -> None:
    """A closed loopback port: connection refused on every attempt."""
    import socket

    import boto3

    from n3xt_creds import AwsSecretsManagerSource

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x")
    source = AwsSecretsManagerSource(
        "n3xt/api",
        region_name="us-east-1",
        endpoint_url=closed,
        session=session,
        retry=RetryPolicy(max_attempts=2),
        connect_timeout=0.5,
    )

    with pytest.raises(SourceError) as caught:
        source.get_credentials()

    assert caught.value.retryable
    assert closed in str(caught.value)
    assert "EndpointConnectionError" in str(caught.value)


# -- the value is malformed: SourceError naming the problem, never the value ------------


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        (f'{{"client_id": "app", "client_secret": "{CANARY}"', "is not valid JSON"),
        (f"{CANARY}", "is not valid JSON"),
        (json.dumps([CANARY]), "is JSON an array, expected an object"),
        (json.dumps(CANARY), "is JSON a string, expected an object"),
        (json.dumps({"client_id": "app", "clientsecret": CANARY}), "did you mean 'clientsecret'"),
        (json.dumps({"client_id": "app", "password": CANARY}), "keys present: 'client_id'"),
        (json.dumps({"client_id": 12345, "client_secret": CANARY}), "'client_id' is a number"),
        (json.dumps({"client_id": "app", "client_secret": {"v": CANARY}}), "is an object"),
        (json.dumps({"client_id": "app", "client_secret": "  "}), "is an empty string"),
    ],
    ids=[
        "truncated-json",
        "plain-string",
        "array",
        "json-string",
        "missing-key-typo",
        "missing-key",
        "id-not-string",
        "secret-not-string",
        "secret-blank",
    ],
)
def test_malformed_secret_string(sm, make_source, stored: str, expected: str) -> None:
    """moto: stores and returns exactly the SecretString given."""
    sm.create_secret(Name="n3xt/api", SecretString=stored)

    with pytest.raises(SourceError) as caught:
        make_source().get_credentials()

    assert expected in str(caught.value)
    assert "secret 'n3xt/api'" in str(caught.value)
    assert not caught.value.retryable
    assert_no_leak(caught.value)


def test_secret_binary_instead_of_string(sm, make_source) -> None:
    """moto: a secret created with SecretBinary."""
    sm.create_secret(Name="n3xt/api", SecretBinary=CANARY.encode())

    with pytest.raises(SourceError, match="holds SecretBinary, not a SecretString") as caught:
        make_source().get_credentials()

    assert_no_leak(caught.value)


def test_malformed_second_secret_is_named(sm, put, make_source) -> None:
    """moto: the split pair's second secret lacks its key."""
    put(sm, "n3xt/id", client_id="app")
    put(sm, "n3xt/secret", secret=CANARY)

    with pytest.raises(SourceError, match=r"secret 'n3xt/secret'.*no key 'client_secret'") as c:
        make_source("n3xt/id", client_secret_id="n3xt/secret").get_credentials()

    assert_no_leak(c.value)


def test_unparseable_answer_names_only_the_exception_type(
    sm, put, make_source, fault_proxy, monkeypatch: Any
) -> None:
    """Any other botocore failure: its message may quote the answer, so it is withheld."""
    from botocore.parsers import ResponseParserError

    put(sm, client_id="app", client_secret=CANARY)
    source = make_source()

    def broken(**kwargs: Any) -> Any:
        raise ResponseParserError(f"could not parse {CANARY}")

    client = source._get_client()
    monkeypatch.setattr(client, "get_secret_value", broken)

    with pytest.raises(SourceError, match="ResponseParserError") as caught:
        source.get_credentials()

    assert_no_leak(caught.value)


# -- the AWS side of this process is misconfigured: SourceError with the fix -----------


def test_unknown_profile_names_the_profile() -> None:
    """No server needed: boto3 looks the profile up locally."""
    from n3xt_creds import AwsSecretsManagerSource

    source = AwsSecretsManagerSource("n3xt/api", profile_name="n3xt-no-such-profile-7c1e")

    with pytest.raises(SourceError, match="profile 'n3xt-no-such-profile-7c1e' is not in"):
        source.get_credentials()


def _isolated_botocore_session() -> Any:
    """A botocore session that reads no region from the environment or config files."""
    import botocore.session

    session = botocore.session.Session(
        session_vars={"region": ("n3xt_test_no_region", None, None, None)}
    )
    session.set_config_variable("config_file", "/nonexistent/n3xt-test-aws-config")
    return session


def test_no_region_says_how_to_set_one() -> None:
    """No server reached: botocore refuses to build a client without a region."""
    import boto3

    from n3xt_creds import AwsSecretsManagerSource

    session = boto3.Session(
        aws_access_key_id="x",
        aws_secret_access_key="x",
        botocore_session=_isolated_botocore_session(),
    )
    source = AwsSecretsManagerSource("n3xt/api", session=session, environ={})

    with pytest.raises(SourceError, match="no AWS region is configured") as caught:
        source.get_credentials()

    assert "region_name" in str(caught.value)


def test_no_aws_credentials_points_at_the_standard_chain(moto_url) -> None:
    """The credential chain emptied (so no instance-metadata lookup): NoCredentialsError."""
    import boto3
    from botocore.credentials import CredentialResolver

    botocore_session = _isolated_botocore_session()
    botocore_session.register_component("credential_provider", CredentialResolver([]))
    session = boto3.Session(botocore_session=botocore_session, region_name="us-east-1")
    from n3xt_creds import AwsSecretsManagerSource

    source = AwsSecretsManagerSource("n3xt/api", session=session, endpoint_url=moto_url)

    with pytest.raises(SourceError, match="no usable AWS credentials") as caught:
        source.get_credentials()

    assert not caught.value.retryable
    assert "never put AWS keys in n3xt_creds settings" in str(caught.value)


def test_an_unclassified_refusal_says_where_to_look(make_source, fault_proxy) -> None:
    """The fault proxy: an AWS error code no row above covers."""
    fault_proxy.fail("ValidationException", 400)
    with pytest.raises(SourceError, match="ValidationException.*CloudTrail") as caught:
        make_source().get_credentials()
    assert not caught.value.retryable
