"""The source registry: which source names settings may use, and how to build each one.

A source is selected in settings by name (``source = "vault"``, ``chain = ["env", "file"]``)
and built by a *factory*, ``from_options(options: SourceOptions) -> source``. Factories
are found through the ``n3xt_creds.sources`` entry-point group, so a third-party
package adds a source (GCP Secret Manager, Azure Key Vault, 1Password, ...) by
declaring, in its own ``pyproject.toml``::

    [project.entry-points."n3xt_creds.sources"]
    onepassword = "my_package.n3xt:from_options"

The built-in sources are declared the same way in our ``pyproject.toml``; they are
also known here by name, so they work even from a source checkout that was never
installed, and a third-party entry point cannot hijack a built-in name.
Factories are imported only when their source is actually built.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from ..errors import ConfigError

__all__ = ["ENTRY_POINT_GROUP", "RESERVED_NAMES", "SourceFactory", "SourceRegistry"]

_log = logging.getLogger("n3xt_creds")

#: The entry-point group third-party sources register under.
ENTRY_POINT_GROUP = "n3xt_creds.sources"

#: ``chain`` is the combinator over other sources, built from the top-level ``chain`` key.
RESERVED_NAMES = frozenset({"chain"})

#: What a factory looks like: it reads its table through the options and returns a source.
SourceFactory = Callable[[Any], Any]

_BUILTINS: dict[str, str] = {
    "env": "n3xt_creds.sources.env:from_options",
    "file": "n3xt_creds.sources.file:from_options",
    "vault": "n3xt_creds.sources.vault:from_options",
    "aws": "n3xt_creds.sources.aws:from_options",
}


@dataclass(frozen=True)
class _Entry:
    name: str
    target: str  # "module:attribute"
    origin: str  # "built-in" or the distribution that declared it


class SourceRegistry:
    """Maps source names to factories (built-ins plus the ``n3xt_creds.sources`` group).

    ``SourceRegistry()`` discovers installed plugins with :mod:`importlib.metadata`;
    ``SourceRegistry(extra={"name": factory})`` adds factories directly, which is
    handy for applications that embed a private source without packaging it.
    """

    def __init__(
        self,
        extra: Mapping[str, SourceFactory] | None = None,
        *,
        discover: bool = True,
    ) -> None:
        self._entries: dict[str, _Entry] = {
            name: _Entry(name, target, "built-in") for name, target in _BUILTINS.items()
        }
        if discover:
            for entry in _discover():
                self._add(entry)
        self._direct: dict[str, SourceFactory] = {}
        for name, factory in (extra or {}).items():
            self._check_name(name, origin="SourceRegistry(extra=...)")
            self._direct[name] = factory

    def _add(self, entry: _Entry) -> None:
        if entry.name in _BUILTINS or entry.name in RESERVED_NAMES:
            if entry.target != _BUILTINS.get(entry.name):
                _log.warning(
                    "ignoring entry point %r from %s: the name belongs to a built-in source",
                    entry.name,
                    entry.origin,
                )
            return
        self._entries[entry.name] = entry

    @staticmethod
    def _check_name(name: str, *, origin: str) -> None:
        if name in RESERVED_NAMES or not name.isidentifier():
            raise ConfigError(f"{origin}: {name!r} cannot be used as a source name")

    @property
    def names(self) -> tuple[str, ...]:
        """Every selectable source name, sorted (``chain`` not included)."""
        return tuple(sorted(set(self._entries) | set(self._direct)))

    def origin(self, name: str) -> str:
        """Where ``name`` comes from: ``built-in``, a distribution name, or ``direct``."""
        if name in self._direct:
            return "direct"
        return self._entries[name].origin

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._direct

    def factory(self, name: str) -> SourceFactory:
        """Import and return the factory for ``name`` (a ConfigError if it cannot be loaded)."""
        if name in self._direct:
            return self._direct[name]
        entry = self._entries[name]
        module_name, _, attribute = entry.target.partition(":")
        try:
            module = importlib.import_module(module_name)
            factory = getattr(module, attribute) if attribute else module
        except (ImportError, AttributeError) as exc:
            raise ConfigError(
                f"source {name!r} ({entry.origin}) could not be loaded from {entry.target!r}: "
                f"{type(exc).__name__}: {exc}. Is the package that provides it installed "
                "with its extras (e.g. `pip install 'n3xt-creds[vault]'`)?",
                key="source",
            ) from None
        if not callable(factory):
            raise ConfigError(
                f"source {name!r}: {entry.target!r} is not callable; an entry point in the "
                f"{ENTRY_POINT_GROUP!r} group must name a from_options(options) function",
                key="source",
            )
        return factory  # type: ignore[no-any-return]


def _discover() -> Iterable[_Entry]:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        origin = f"package {dist.name}" if dist is not None else "an installed package"
        yield _Entry(ep.name, ep.value, origin)
