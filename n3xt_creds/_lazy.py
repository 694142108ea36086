"""Lazy public names (PEP 562): a package lists them, their modules load on first use.

Keeps ``import n3xt_creds`` cheap: the Vault/AWS sources, the settings machinery and
the emulator are imported only when a program touches their names.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from types import FunctionType
from typing import Any

__all__ = ["attach"]


def attach(
    package: str,
    lazy: Mapping[str, str],
    namespace: MutableMapping[str, Any],
    public: Sequence[str],
    *,
    public_module: str | None = None,
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``, loading ``lazy[name]`` (a module path
    relative to ``package``) the first time ``name`` is looked up.

    With ``public_module``, a loaded class or function reports it as its ``__module__``
    (the front door's path, as the eagerly imported names do).
    """

    def __getattr__(name: str) -> Any:
        module = lazy.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        if public_module is not None and isinstance(value, type | FunctionType):
            value.__module__ = public_module
        namespace[name] = value  # later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *public})

    return __getattr__, __dir__
