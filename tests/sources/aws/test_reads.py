"""AwsSecretsManagerSource reading real secrets from moto's server over HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from typing import Any

import pytest

from n3xt_creds import AwsSecretsManagerSource, Credentials, Secret

pytestmark = pytest.mark.aws


def test_reads_json_pair_from_awscurrent(sm, put, make_source, fault_proxy) -> None:
    put(sm, client_id="app-1", client_secret="s3cr3t-value")

    credentials = make_source().get_credentials()

    assert credentials == Credentials("app-1", Secret("s3cr3t-value"))
    assert credentials.source == "aws:n3xt/api"
    assert [c.params for c in fault_proxy.calls()] == [
        {"SecretId": "n3xt/api", "VersionStage": "AWSCURRENT"}
    ]


def test_custom_key_names_and_whitespace_stripped(sm, put, make_source) -> None:
    put(sm, **{"clientId": " app-2\n", "clientSecret": "value-2\n"})

    source = make_source(client_id_key="clientId", client_secret_key="clientSecret")

    assert source.get_credentials() == Credentials("app-2", Secret("value-2"))


def test_pair_split_across_two_secrets(sm, put, make_source, fault_proxy) -> None:
    put(sm, "n3xt/id", client_id="app-3")
    put(sm, "n3xt/secret", client_secret="value-3")

    source = make_source("n3xt/id", client_secret_id="n3xt/secret")

    assert source.get_credentials() == Credentials("app-3", Secret("value-3"))
    assert [c.params["SecretId"] for c in fault_proxy.calls()] == ["n3xt/id", "n3xt/secret"]


def test_version_stage_and_version_id(sm, put, make_source) -> None:
    put(sm, client_id="app", client_secret="old")
    old_version = sm.get_secret_value(SecretId="n3xt/api")["VersionId"]
    sm.put_secret_value(
        SecretId="n3xt/api", SecretString=json.dumps({"client_id": "app", "client_secret": "new"})
    )

    def secret_of(source: AwsSecretsManagerSource) -> str:
        return source.get_credentials().client_secret.get_secret_value()

    assert secret_of(make_source()) == "new"
    assert secret_of(make_source(version_stage="AWSPREVIOUS")) == "old"
    assert secret_of(make_source(version_id=old_version)) == "old"


def test_every_call_rereads_so_a_rotated_secret_is_seen(sm, put, make_source) -> None:
    put(sm, client_id="app", client_secret="first")
    source = make_source()
    assert source.get_credentials().client_secret == Secret("first")

    sm.put_secret_value(
        SecretId="n3xt/api", SecretString=json.dumps({"client_id": "app", "client_secret": "next"})
    )

    assert source.get_credentials().client_secret == Secret("next")


class _CountingSession:
    """Wraps a boto3 session to count the clients it makes."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self.clients = 0
        self._lock = threading.Lock()

    def client(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self.clients += 1
        return self._session.client(*args, **kwargs)


def test_one_client_per_source_even_under_concurrent_first_use(
    sm, put, make_source, aws_session
) -> None:
    put(sm, client_id="app", client_secret="value")
    session = _CountingSession(aws_session)
    source = make_source(session=session)
    barrier = threading.Barrier(8)
    results: list[Credentials] = []

    def read() -> None:
        barrier.wait(timeout=10)
        results.append(source.get_credentials())

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(results) == 8
    assert session.clients == 1
    source.get_credentials()
    assert session.clients == 1


def test_injected_client_is_used_as_is(sm, put, aws_session, fault_proxy) -> None:
    put(sm, client_id="app", client_secret="value")
    client = aws_session.client("secretsmanager", endpoint_url=fault_proxy.url)

    source = AwsSecretsManagerSource("n3xt/api", client=client)

    assert source.get_credentials().client_id == "app"
    assert len(fault_proxy.calls()) == 1
    assert "region us-east-1" in source.describe()
    assert fault_proxy.url in source.describe()


def test_describe_and_repr_name_the_secret_never_its_value(sm, put, make_source) -> None:
    put(sm, client_id="app", client_secret="canary-c4n4ry")
    source = make_source(version_stage="AWSPREVIOUS")

    description = source.describe()

    assert description.startswith("aws (secret 'n3xt/api'")
    assert "region us-east-1" in description
    assert "stage AWSPREVIOUS" in description
    assert "endpoint http://127.0.0.1:" in description
    source = make_source()
    credentials = source.get_credentials()
    for text in (source.describe(), repr(source), repr(credentials), str(credentials)):
        assert "canary-c4n4ry" not in text


def test_importing_and_constructing_does_not_import_boto3() -> None:
    code = (
        "import sys, n3xt_creds\n"
        "s = n3xt_creds.AwsSecretsManagerSource('n3xt/api', region_name='us-east-1')\n"
        "s.describe()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # 3.12+ warns about fork with threads
def test_forked_child_builds_its_own_client(sm, put, make_source) -> None:
    put(sm, client_id="app", client_secret="value")
    source = make_source()
    source.get_credentials()
    parent_client = source._client
    source._client_lock.acquire()  # as if another thread were making the client at fork time
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        signal.alarm(10)  # a deadlock ends the child instead of hanging the test
        try:
            ok = source._client is None and source.get_credentials().client_id == "app"
            ok = ok and source._client is not parent_client
        except BaseException:
            ok = False
        os._exit(0 if ok else 1)
    source._client_lock.release()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert source._client is parent_client


def test_without_boto3_the_error_says_which_extra_to_install() -> None:
    code = (
        "import sys\n"
        "sys.modules['boto3'] = None  # as if boto3 were not installed\n"
        "import n3xt_creds\n"
        "try:\n"
        "    n3xt_creds.AwsSecretsManagerSource('n3xt/api').get_credentials()\n"
        "except n3xt_creds.SourceError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "pip install 'n3xt-creds[aws]'" in result.stdout
