"""Reading our section of an application's own ``Dynaconf`` object.

An application that already configures itself with dynaconf keeps one settings file,
one environment selector (``ENV_FOR_DYNACONF``, or its own switcher) and one set of
layers (``settings.local.toml``, ``.secrets.toml``, ``[global]``, its env-var prefix,
``dynaconf_merge``). We take the object as the application configured it: the
section's value in the object's current environment is exactly what the application
itself would read with ``settings.n3xt``. Our ``N3XT_CREDS_*`` variables are then
layered on top, and the result goes through the same validation as a settings file.

Provenance comes from dynaconf's own load history (``dynaconf.utils.inspect.get_history``,
dynaconf ≥ 3.2): for each key, the newest loader that really set it — a file and its
environment table (``settings.toml [production.n3xt]``) or the variable
(``environment variable DYNACONF_N3XT__SOURCE``). A record dynaconf made while
merging (``dynaconf_merge``) repeats keys it did not set; those are checked against the
file itself, so the origin named is the table the key is written in.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import _environ
from ..errors import ConfigError
from ..sources.options import is_secret_key
from ._load import MAX_DEPTH, RawSettings, apply_environ, merge

__all__ = ["read_dynaconf"]

_FILE_LOADERS = frozenset({"toml", "yaml", "json", "ini", "py"})


def read_dynaconf(settings: Any, section: str, environ: Mapping[str, str]) -> RawSettings:
    """Our keys from ``settings[section]`` in its current environment, with origins."""
    if not (hasattr(settings, "current_env") and callable(getattr(settings, "get", None))):
        raise ConfigError(
            f"from_dynaconf() takes the application's Dynaconf object (or its LazySettings); "
            f"got {type(settings).__name__}. For a plain file use from_settings(path, section=...)",
            key="settings",
        )
    if not section or not section.strip() or "." in section:
        raise ConfigError(
            f"from_dynaconf(section=...) must name one top-level key, like 'n3xt'; got {section!r}",
            key="section",
        )
    section = section.strip().lower()
    env = str(settings.current_env).strip().lower()
    switcher = str(settings.get("ENV_SWITCHER_FOR_DYNACONF") or "ENV_FOR_DYNACONF")
    chosen_by = os.environ.get(switcher)
    env_reason = (
        f"the Dynaconf object's current environment ({switcher}={chosen_by})"
        if chosen_by
        else f"the Dynaconf object's current environment ({switcher} unset: its default)"
    )
    environments_on = bool(settings.get("ENVIRONMENTS_FOR_DYNACONF"))
    value = settings.get(section)
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"dynaconf settings: `{section}` must be a table of n3xt_creds settings "
            f"([{env}.{section}] in settings.toml); got {type(value).__name__}",
            key=section,
            env=env,
        )
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    merge(values, _evaluated(value, label=f"[{env}.{section}]"), origins, "dynaconf settings")
    history = _History(settings, section, env, environments_on)
    for dotted in list(origins):
        origins[dotted] = history.origin(dotted)
    primary = history.primary_file()
    table = f"{env}.{section}" if environments_on else section
    label = f"{primary or 'dynaconf settings'} [{table}]"
    _refuse_second_selector(environ, env, switcher, label)
    apply_environ(values, origins, environ, file=Path(primary) if primary else None, env=env)
    if "token_url" not in values and not _holds_any_secret(values):
        _explain_replaced_table(history, label, env, section)
    return RawSettings(
        path=Path(primary) if primary else None,
        path_reason="the application's Dynaconf object (from_dynaconf)",
        env=env,
        env_reason=env_reason,
        environments=(env,),
        values=values,
        origins=origins,
        label=label,
    )


def _refuse_second_selector(
    environ: Mapping[str, str], env: str, switcher: str, label: str
) -> None:
    """N3XT_CREDS_ENV means nothing here; a value that disagrees would mislead, so say so."""
    ours = environ.get(_environ.SETTINGS_ENV, "").strip().lower()
    if ours and ours != env:
        raise ConfigError(
            f"{label}: {_environ.SETTINGS_ENV}={ours} disagrees with the application's "
            f"environment {env!r}. With from_dynaconf() the environment is the Dynaconf "
            f"object's ({switcher}); unset {_environ.SETTINGS_ENV} or set {switcher}={ours}.",
            key="env",
            env=env,
        )


def _evaluated(value: Any, *, label: str, depth: int = 0) -> Any:
    """Plain data, with dynaconf's lazy values (``@format``, ``@jinja``) evaluated the way
    the application would see them: item access evaluates, iterating values does not."""
    if depth > MAX_DEPTH:
        raise ConfigError(f"dynaconf settings {label}: nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, Mapping):
        return {str(k): _evaluated(value[k], label=label, depth=depth + 1) for k in list(value)}
    if isinstance(value, (list, tuple)):
        return [_evaluated(value[i], label=label, depth=depth + 1) for i in range(len(value))]
    return value


def _holds_any_secret(values: Mapping[str, Any]) -> bool:
    """A secret is refused first (validation does it), before any other advice."""
    tables = values.get("sources")
    pairs = [(None, k) for k in values]
    if isinstance(tables, Mapping):
        pairs += [(n, k) for n, t in tables.items() if isinstance(t, Mapping) for k in t]
    return any(is_secret_key(key, source=name) for name, key in pairs)


def _explain_replaced_table(history: _History, label: str, env: str, section: str) -> None:
    """``token_url`` is set in a file but dynaconf dropped it: a table replaced, not merged."""
    where = history.file_origin("token_url")
    if where is None:
        return
    raise ConfigError(
        f"{label}: `token_url` is required but not set here, although {where} sets it: "
        f"dynaconf replaced that table with a later one instead of merging. Add "
        f"`dynaconf_merge = true` to [{env}.{section}] (or create the object with "
        "Dynaconf(merge_enabled=True)); see docs/dynaconf.md.",
        key="token_url",
        env=env,
    )


class _History:
    """Where each key of the section came from, read from dynaconf's load history."""

    def __init__(self, settings: Any, section: str, env: str, environments_on: bool) -> None:
        self.settings = settings
        self.section = section
        self.env = env
        self.environments_on = environments_on
        self._documents: dict[str, dict[str, Any] | None] = {}
        self._prefixes = [
            p
            for p in (settings.get("ENVVAR_PREFIX_FOR_DYNACONF"), "DYNACONF")
            if isinstance(p, str) and p
        ]
        self._files: list[str] = []
        try:
            from dynaconf.utils.inspect import get_history  # noqa: PLC0415 - dynaconf ≥ 3.2
        except ImportError:  # pragma: no cover - older dynaconf: origins stay generic
            self._get_history = None
        else:
            self._get_history = get_history

    def _entries(self, key: str) -> list[dict[str, Any]]:
        if self._get_history is None:
            return []
        try:
            entries: list[dict[str, Any]] = self._get_history(self.settings, key)
        except Exception:  # a history that cannot be read only costs us the origin
            return []
        return entries

    def primary_file(self) -> str | None:
        """The file that holds the section (the first one loaded that has it)."""
        for entry in self._entries(self.section):
            if entry.get("loader") in _FILE_LOADERS and self._is_file(entry):
                return _display(str(entry["identifier"]))
        return None

    def origin(self, dotted: str) -> str:
        key = f"{self.section}.{dotted}"
        for entry in reversed(self._entries(key)):
            loader = str(entry.get("loader", ""))
            entry_env = str(entry.get("env", "")).lower()
            if loader.startswith("env"):
                variable = self._variable(dotted)
                if variable:
                    return f"environment variable {variable}"
                continue
            if entry_env not in ("default", "global", self.env, "main"):
                continue
            if loader in _FILE_LOADERS and self._is_file(entry):
                if entry.get("merged") and not self._written_in(entry, dotted):
                    continue
                table = f"{entry_env}.{self.section}" if self.environments_on else self.section
                return f"{_display(str(entry['identifier']))} [{table}]"
            return f"dynaconf {loader} loader ({entry.get('identifier')}) [{entry_env}]"
        return "dynaconf settings"

    def file_origin(self, dotted: str) -> str | None:
        """The newest file table that sets ``dotted``, whether or not it survived."""
        for entry in reversed(self._entries(f"{self.section}.{dotted}")):
            if entry.get("loader") in _FILE_LOADERS and self._is_file(entry):
                env = str(entry.get("env", "")).lower()
                table = f"{env}.{self.section}" if self.environments_on else self.section
                return f"{_display(str(entry['identifier']))} [{table}]"
        return None

    @staticmethod
    def _is_file(entry: Mapping[str, Any]) -> bool:
        return os.path.isfile(str(entry.get("identifier", "")))

    def _variable(self, dotted: str) -> str | None:
        """The variable dynaconf read ``dotted`` from (most specific name first)."""
        names = {name.upper(): name for name in os.environ}
        parts = [self.section, *dotted.split(".")]
        for prefix in self._prefixes:
            for end in range(len(parts), 0, -1):
                candidate = f"{prefix}_{'__'.join(parts[:end])}".upper()
                if candidate in names:
                    return names[candidate]
        return None

    def _written_in(self, entry: Mapping[str, Any], dotted: str) -> bool:
        """Does the file of a merged record itself set ``dotted`` in that environment?"""
        identifier = str(entry["identifier"])
        if identifier not in self._documents:
            self._documents[identifier] = _read_toml(identifier)
        document = self._documents[identifier]
        if document is None:
            return True  # not TOML: trust the record
        node: Any = _get(document, str(entry.get("env", ""))) if self.environments_on else document
        for part in [self.section, *dotted.split(".")]:
            node = _get(node, part) if isinstance(node, Mapping) else None
            if node is None:
                return False
        return True


def _get(mapping: Mapping[str, Any], key: str) -> Any:
    for name, value in mapping.items():
        if str(name).lower() == key.lower():
            return value
    return None


def _read_toml(path: str) -> dict[str, Any] | None:
    if not path.endswith(".toml"):
        return None
    from dynaconf.vendor import tomllib  # noqa: PLC0415 - only with dynaconf in use

    try:
        with open(path, "rb") as handle:
            document: dict[str, Any] = tomllib.load(handle)
    except (OSError, ValueError, RecursionError):
        return None
    return document


def _display(identifier: str) -> str:
    """A file as the user would name it: relative to the working directory when under it."""
    try:
        return str(Path(identifier).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return identifier
