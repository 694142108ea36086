"""pytest plugin: the ``n3xt_emulator`` fixture, registered via the ``pytest11`` entry point.

One emulator server is started per test session, the first time a test asks for it, and
stopped at the end of the session; each test gets it freshly ``reset()`` (no clients, no
tokens, no faults, zeroed counters, default ``expires_in`` and latency). Importing this
module starts nothing and does not import the server.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .emulator import Emulator

__all__ = ["n3xt_emulator"]


@pytest.fixture(scope="session")
def _n3xt_emulator_session() -> Iterator[Emulator]:
    """The session's one emulator server (use ``n3xt_emulator`` instead)."""
    # Imported here, not at module level, so loading the plugin stays cheap.
    from .emulator import Emulator  # noqa: PLC0415

    with Emulator() as emulator:
        yield emulator


@pytest.fixture
def n3xt_emulator(_n3xt_emulator_session: Emulator) -> Emulator:
    """A running N3XT emulator with no clients and default settings, shared per session.

    ::

        def test_my_app(n3xt_emulator):
            creds = n3xt_emulator.add_client()
            app = make_app(token_url=n3xt_emulator.token_url(), credentials=creds)
            ...
    """
    _n3xt_emulator_session.reset()
    return _n3xt_emulator_session
