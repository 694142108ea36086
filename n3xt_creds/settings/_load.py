"""Reading settings: find the file, pick the environment, layer the values, remember origins.

The layers, lowest first: ``[default]``, then the chosen environment's table (tables
deep-merge, everything else replaces — a list in ``[production]`` replaces the
``[default]`` list rather than being appended to it), then ``N3XT_CREDS_<KEY>``
variables (``__`` nests: ``N3XT_CREDS_SOURCES__AWS__SECRET_ID``). For every leaf
key we remember which layer set it, so error messages and ``n3xt-creds config``
can say where a value came from.

dynaconf provides the parsing: its TOML reader, and its environment-variable
value parser (``300`` → int, ``true`` → bool, ``["env", "file"]`` → list, ``@int 5``,
``@json {...}``), so values behave exactly as in any dynaconf project. The layering
itself is done here rather than by a ``Dynaconf`` object because we need three
things it does not give: an injectable ``environ`` (tests, the CLI), replace-not-append
semantics for lists under ``merge_enabled``, and per-key provenance. dynaconf is
imported only inside these functions.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import _environ
from ..errors import ConfigError

__all__ = ["DEFAULT_ENV", "DEFAULT_FILE", "RawSettings", "read_settings"]

DEFAULT_ENV = "development"
DEFAULT_FILE = "settings.toml"
_PREFIX = _environ.SETTINGS_PREFIX + "_"
# Variables with the prefix that choose *which* settings, rather than being settings.
_CONTROL_VARIABLES = frozenset({_environ.SETTINGS_ENV, _environ.SETTINGS_FILE})
_PLAIN_TYPES = (str, int, float, bool, list, dict)


@dataclass(frozen=True)
class RawSettings:
    """Merged, not yet validated settings, with where each value came from."""

    path: Path
    path_reason: str
    env: str
    env_reason: str
    environments: tuple[str, ...]
    values: dict[str, Any]
    origins: dict[str, str]  # dotted key -> "settings.toml [default]" / "environment variable X"


def read_settings(
    path: str | os.PathLike[str] | None,
    env: str | None,
    environ: Mapping[str, str],
    *,
    cwd: Path | None = None,
) -> RawSettings:
    """Locate, parse and layer the settings; every problem becomes a ConfigError."""
    file, path_reason = _locate(path, environ, cwd or Path.cwd())
    document = _parse(file)
    sections = _sections(document, file)
    chosen, env_reason, explicit = _choose_env(env, environ)
    if explicit and chosen != "default" and chosen not in sections:
        have = ", ".join(f"[{name}]" for name in sorted(sections)) or "(none)"
        raise ConfigError(
            f"{file}: environment {chosen!r} ({env_reason}) is not in the file; "
            f"it has: {have}. Add a [{chosen}] table or choose one of those.",
            key="env",
            path=str(file),
            env=chosen,
        )
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for layer in ("default", chosen) if chosen != "default" else ("default",):
        if layer in sections:
            _merge(values, sections[layer], origins, f"{file} [{layer}]", prefix="")
    _apply_environ(values, origins, environ, file=file, env=chosen)
    return RawSettings(
        path=file,
        path_reason=path_reason,
        env=chosen,
        env_reason=env_reason,
        environments=tuple(sorted(sections)),
        values=values,
        origins=origins,
    )


def _locate(
    path: str | os.PathLike[str] | None, environ: Mapping[str, str], cwd: Path
) -> tuple[Path, str]:
    if path is not None:
        candidates = [(cwd / Path(path), "given by --settings or the path argument")]
    elif environ.get(_environ.SETTINGS_FILE):
        named = environ[_environ.SETTINGS_FILE]
        candidates = [(cwd / Path(named), f"named by {_environ.SETTINGS_FILE}")]
    else:
        candidates = [
            (
                cwd / DEFAULT_FILE,
                f"default ./{DEFAULT_FILE}: no path given, {_environ.SETTINGS_FILE} unset",
            )
        ]
    file, reason = candidates[0]
    if file.is_file():
        return file, reason
    state = "is a directory, not a file" if file.exists() else "does not exist"
    looked = [
        f"  - argument / --settings: {path if path is not None else 'not given'}",
        f"  - {_environ.SETTINGS_FILE}: {environ.get(_environ.SETTINGS_FILE) or 'not set'}",
    ]
    if path is None and not environ.get(_environ.SETTINGS_FILE):
        looked.append(f"  - {file}")
    raise ConfigError(
        f"settings file {file} {state} ({reason}). Places looked:\n"
        + "\n".join(looked)
        + f"\nCreate it (see docs/settings.md), pass --settings FILE, or set {_environ.SETTINGS_FILE}.",
        key="settings",
        path=str(file),
    )


def _parse(file: Path) -> dict[str, Any]:
    from dynaconf.vendor import tomllib  # noqa: PLC0415 - dynaconf only when settings are used

    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"settings file {file} cannot be read: {getattr(exc, 'strerror', None) or type(exc).__name__}",
            path=str(file),
        ) from None
    try:
        document: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message says what and where ("... (at line 3, column 7)"), never the value.
        raise ConfigError(f"{file}: not valid TOML: {exc}", path=str(file)) from None
    return document


def _sections(document: dict[str, Any], file: Path) -> dict[str, dict[str, Any]]:
    sections: dict[str, dict[str, Any]] = {}
    for name, table in document.items():
        if not isinstance(table, dict):
            raise ConfigError(
                f"{file}: top-level key `{name}` is outside any environment table; "
                "put it under [default] (or [development], [production], ...)",
                key=name,
                path=str(file),
            )
        sections[name.lower()] = table
    return sections


def _choose_env(env: str | None, environ: Mapping[str, str]) -> tuple[str, str, bool]:
    if env is not None:
        return env.strip().lower(), "given by --env or the env argument", True
    if environ.get(_environ.SETTINGS_ENV):
        return environ[_environ.SETTINGS_ENV].strip().lower(), f"from {_environ.SETTINGS_ENV}", True
    return DEFAULT_ENV, f"default: no env given and {_environ.SETTINGS_ENV} unset", False


def _merge(
    into: dict[str, Any],
    table: Mapping[str, Any],
    origins: dict[str, str],
    origin: str,
    *,
    prefix: str,
) -> None:
    """Deep-merge ``table`` into ``into``: tables merge key by key, other values replace."""
    for raw_key, value in table.items():
        key = str(raw_key).lower()
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            if not isinstance(into.get(key), dict):
                into[key] = {}
                _forget(origins, dotted)
            origins.setdefault(dotted, origin)
            _merge(into[key], value, origins, origin, prefix=dotted + ".")
        else:
            into[key] = value
            _forget(origins, dotted)
            origins[dotted] = origin


def _forget(origins: dict[str, str], dotted: str) -> None:
    for key in [k for k in origins if k == dotted or k.startswith(dotted + ".")]:
        del origins[key]


def _apply_environ(
    values: dict[str, Any],
    origins: dict[str, str],
    environ: Mapping[str, str],
    *,
    file: Path,
    env: str,
) -> None:
    from dynaconf.utils.parse_conf import parse_conf_data  # noqa: PLC0415 - as above

    for name in sorted(environ):
        if not name.startswith(_PREFIX) or name in _CONTROL_VARIABLES:
            continue
        parts = name[len(_PREFIX) :].lower().split("__")
        if not all(parts):
            raise ConfigError(
                f"environment variable {name}: empty key part; nest keys with exactly two "
                f"underscores, e.g. {_PREFIX}SOURCES__AWS__SECRET_ID",
                key=name,
                path=str(file),
                env=env,
            )
        try:
            value = parse_conf_data(environ[name], tomlfy=True)
        except Exception as exc:  # dynaconf raises assorted types for bad @casts
            raise ConfigError(
                f"environment variable {name}: its value cannot be parsed "
                f"({type(exc).__name__}); use a plain value, a TOML literal or @int/@float/@bool/@json",
                key=".".join(parts),
                path=str(file),
                env=env,
            ) from None
        if not isinstance(value, _PLAIN_TYPES):
            raise ConfigError(
                f"environment variable {name}: @format/@jinja and other lazy dynaconf values "
                "are not supported in n3xt_creds settings; give the value itself",
                key=".".join(parts),
                path=str(file),
                env=env,
            )
        target = values
        for depth, part in enumerate(parts[:-1]):
            if not isinstance(target.get(part), dict):
                if part in target:
                    dotted = ".".join(parts[: depth + 1])
                    raise ConfigError(
                        f"environment variable {name} nests under `{dotted}`, "
                        f"which is not a table ({origins.get(dotted, 'settings')})",
                        key=dotted,
                        path=str(file),
                        env=env,
                    )
                target[part] = {}
            target = target[part]
        dotted = ".".join(parts)
        _forget(origins, dotted)
        if isinstance(value, dict):
            target[parts[-1]] = {}
            _merge(
                target[parts[-1]],
                value,
                origins,
                f"environment variable {name}",
                prefix=dotted + ".",
            )
            origins[dotted] = f"environment variable {name}"
        else:
            target[parts[-1]] = value
            origins[dotted] = f"environment variable {name}"
