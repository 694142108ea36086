"""Fixtures for the sans-IO core tests (helpers live in ``_support``)."""

from __future__ import annotations

import pytest

from n3xt_creds import Credentials
from n3xt_creds.testing import ManualClock
from tests.core._support import CANARY_SECRET


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def creds() -> Credentials:
    return Credentials("client-1", CANARY_SECRET, source="test:script")
