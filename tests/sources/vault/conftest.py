"""Fixtures for the Vault source tests. The OpenBao server itself (``vault``,
``fresh_bao``, ``request_log``) is shared by the whole session: tests/servers/vault.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from n3xt_creds.sources.vault import VaultSource


@pytest.fixture
def make_source() -> Iterator[Callable[..., VaultSource]]:
    """Build VaultSources that are closed (their connections to Vault) after the test."""
    made: list[VaultSource] = []

    def make(*args: Any, **kwargs: Any) -> VaultSource:
        source = VaultSource(*args, **kwargs)
        made.append(source)
        return source

    yield make
    for source in made:
        source.close()
