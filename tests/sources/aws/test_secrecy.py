"""AwsSecretsManagerSource: no secret in botocore's DEBUG logs, escaped AWS words, no
context chain, no pickle. Real boto3 against moto's server (through the fault proxy).
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator

import pytest

from n3xt_creds import RetryPolicy, SourceError
from tests.sources._secrecy import ThreadRecords, assert_nothing_reachable, debug_logging, raised

pytestmark = pytest.mark.aws

CANARY = "canary-aws-61f0-never-show"


@pytest.fixture
def debug_everywhere() -> Iterator[ThreadRecords]:
    with debug_logging() as records:
        yield records


def test_botocore_debug_logs_of_our_read_carry_no_secret(
    sm, put, make_source, debug_everywhere
) -> None:
    put(sm, client_id="app", client_secret=CANARY)
    source = make_source()
    source._get_client()  # client creation logs plenty; the read is what matters
    debug_everywhere.lines.clear()

    assert source.get_credentials().client_secret.get_secret_value() == CANARY

    assert debug_everywhere.lines, "DEBUG logging was not on"
    assert not [line for line in debug_everywhere.lines if CANARY in line]
    # The application's own boto3 calls keep their DEBUG records (the filter is scoped).
    debug_everywhere.lines.clear()
    sm.get_secret_value(SecretId="n3xt/api")
    assert any("botocore.parsers" in line for line in debug_everywhere.lines)


def test_a_transient_failure_keeps_no_request_in_the_error(make_source, fault_proxy) -> None:
    fault_proxy.disconnect(2)
    error = raised(make_source(retry=RetryPolicy(max_attempts=2)).get_credentials)
    assert isinstance(error, SourceError) and error.retryable
    assert error.__context__ is None and error.__cause__ is None
    assert_nothing_reachable(error, "testing")  # the session's (fake) AWS secret key


def test_aws_error_codes_are_escaped(make_source, fault_proxy) -> None:
    fault_proxy.fail("Refused\r\n2026-01-01 INFO forged line\x1b[2J", 400)
    message = str(raised(make_source().get_credentials))
    assert "Refused\\r\\n2026-01-01" in message
    assert not any(c in message for c in "\r\n\x1b")


def test_aws_source_refuses_pickling(make_source) -> None:
    with pytest.raises(TypeError, match="AwsSecretsManagerSource refuses to be pickled"):
        pickle.dumps(make_source())
