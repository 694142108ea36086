"""pytest plugin: the ``n3xt_emulator`` and ``n3xt_app_env`` fixtures (``pytest11`` entry point).

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

__all__ = ["n3xt_app_env", "n3xt_emulator"]


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


#: Variables of the developer's shell that would change which settings an app reads.
_DEVELOPER_CHOICES = ("N3XT_CREDS_",)


@pytest.fixture
def n3xt_app_env(n3xt_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point the app under test at the emulator through the variables it reads in production.

    Sets ``N3XT_CLIENT_ID`` / ``N3XT_CLIENT_SECRET`` (a fresh client of the emulator),
    ``N3XT_CREDS_TOKEN_URL`` (the emulator) and ``N3XT_CREDS_SOURCE=env``, and removes
    every other ``N3XT_CREDS_*`` variable of the developer's shell (``N3XT_CREDS_ENV``,
    ``N3XT_CREDS_SETTINGS``, a leftover ``N3XT_CREDS_SOURCES__...``), so an unchanged
    ``from_settings()`` or ``from_dynaconf()`` in the app authenticates to the emulator
    whatever the shell says. Everything is restored after the test. Returns the variables
    it set (``env["N3XT_CLIENT_ID"]`` is the client the API will see)::

        def test_app_lists_payments(n3xt_app_env, n3xt_emulator):
            app = create_app()                      # calls n3xt_creds.from_settings()
            assert app.list_payments() == [...]
            assert n3xt_emulator.counters.token_requests == {"success": 1}
    """
    import os  # noqa: PLC0415 - the plugin module stays import-light

    for name in list(os.environ):
        if name.startswith(_DEVELOPER_CHOICES):
            monkeypatch.delenv(name)
    variables = n3xt_emulator.environ()
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return variables
