"""Run a started emulator in the foreground until Ctrl-C or SIGTERM.

Used by the one emulator command, ``n3xt-creds emulator`` (which
``python -m n3xt_creds.testing`` runs too).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Sequence
from types import FrameType

from ..credentials import Credentials
from .emulator import Emulator

__all__ = ["serve_until_stopped"]


def serve_until_stopped(
    emulator: Emulator,
    announce: Callable[[Emulator, Sequence[Credentials]], None],
    *,
    clients: int = 1,
) -> None:
    """Add ``clients`` throwaway clients, ``announce`` them, wait for SIGINT/SIGTERM, stop.

    ``emulator`` must already be started (so start-up errors are the caller's to word).
    """
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # Handle SIGINT explicitly: a shell starts background jobs with SIGINT ignored, and a
    # handler keeps KeyboardInterrupt from landing in the middle of start-up; the main
    # thread must wake from its wait on SIGTERM too.
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        announce(emulator, [emulator.add_client() for _ in range(clients)])
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        emulator.stop()
