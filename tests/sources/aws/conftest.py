"""Fixtures for the AWS source tests. moto's server, the fault proxy and ``sm`` are shared
by the whole session: tests/servers/aws.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.servers.aws import REGION, FaultProxy


@pytest.fixture
def make_source(aws_session: Any, fault_proxy: FaultProxy) -> Callable[..., Any]:
    """Build an AwsSecretsManagerSource that reaches moto through the fault proxy."""
    from n3xt_creds import AwsSecretsManagerSource

    def make(secret_id: str = "n3xt/api", **kwargs: Any) -> AwsSecretsManagerSource:
        kwargs.setdefault("session", aws_session)
        kwargs.setdefault("endpoint_url", fault_proxy.url)
        kwargs.setdefault("region_name", REGION)
        kwargs.setdefault("sleep", lambda seconds: None)  # backoff without waiting
        return AwsSecretsManagerSource(secret_id, **kwargs)

    return make
