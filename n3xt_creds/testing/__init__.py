"""Test helpers: a local N3XT token-endpoint emulator and a pytest plugin.

``Emulator`` serves N3XT's client-credentials token endpoint and a protected stand-in
API on 127.0.0.1, with controls to add clients, expire or revoke tokens, add latency
and inject faults. ``python -m n3xt_creds.testing`` runs one for local development.
The ``n3xt_emulator`` pytest fixture (registered automatically) gives each test a
freshly reset emulator. See ``docs/testing.md``.

The server modules are imported on first use, so loading the pytest plugin costs
almost nothing in projects that never ask for the fixture.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import attach

if TYPE_CHECKING:
    from ._clock import ManualClock
    from ._faults import Fault
    from ._state import Counters
    from .emulator import Emulator

__all__ = ["Counters", "Emulator", "Fault", "ManualClock"]

_LAZY = {
    "Emulator": ".emulator",
    "Fault": "._faults",
    "Counters": "._state",
    "ManualClock": "._clock",
}


__getattr__, __dir__ = attach(__name__, _LAZY, globals(), __all__)
