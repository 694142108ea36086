"""``asyncio``, imported on first use: the one place the core's async halves get it from.

Only async callers need asyncio, and importing it costs more than the rest of
``import n3xt_creds``. So every module with an async half writes
``from .aio import asyncio`` at its top and uses ``asyncio.X`` as usual: for type
checkers the name *is* the asyncio module; at run time it is a stand-in that imports
asyncio on the first attribute access (an async caller's first slow-path call) and then
hands out its attributes. The hot path never touches it.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

__all__ = ["asyncio"]

if TYPE_CHECKING:
    import asyncio
else:

    class _AsyncioOnFirstUse:
        """Stand-in for the asyncio module until something reads one of its names."""

        __slots__ = ()

        def __getattr__(self, name: str) -> Any:
            module = sys.modules.get("asyncio") or importlib.import_module("asyncio")
            return getattr(module, name)

        def __repr__(self) -> str:
            return "<asyncio, imported on first use>"

    asyncio = _AsyncioOnFirstUse()
