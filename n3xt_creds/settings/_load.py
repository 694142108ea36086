"""Reading settings: find the file, pick the environment, layer the values, remember origins.

The layers, lowest first: ``[default]``, the chosen environment's table, ``[global]``
(dynaconf's "applies to every environment"), then the same three from
``settings.local.toml`` next to the file (dynaconf's uncommitted local overrides), then
``N3XT_CREDS_<KEY>`` variables (``__`` nests: ``N3XT_CREDS_SOURCES__AWS__SECRET_ID``).
Tables deep-merge, everything else replaces (a list in ``[production]`` replaces the
``[default]`` list rather than being appended to it). With ``section="n3xt"`` our keys
are read from ``[default.n3xt]``, ``[production.n3xt]``... of a file the application
shares, and every other key is the application's and left alone; the environment is
then also chosen by the application's ``ENV_FOR_DYNACONF`` when ``N3XT_CREDS_ENV`` is unset,
and our section of a ``.secrets.toml`` next to the file is read too (so that a secret
put there is refused, saying where it belongs, rather than silently ignored). For every leaf key we
remember which layer set it, so error messages and ``n3xt-creds config`` can say where
a value came from.

No file is needed when the variables say everything: with no path given,
``N3XT_CREDS_SETTINGS`` unset, no ``./settings.toml`` and ``N3XT_CREDS_TOKEN_URL`` set,
the built-in defaults and the variables are the settings (``N3XT_CREDS_SETTINGS=/dev/null``
says the same explicitly).

dynaconf provides the parsing: its TOML reader, and its environment-variable
value parser (``300`` → int, ``true`` → bool, ``["env", "file"]`` → list, ``@int 5``,
``@json {...}``), so values behave exactly as in any dynaconf project. The layering
itself is done here rather than by a ``Dynaconf`` object because we need three
things it does not give: an injectable ``environ`` (tests, the CLI), replace-not-append
semantics for lists under ``merge_enabled``, and per-key provenance. An application
that has its own ``Dynaconf`` object uses :func:`n3xt_creds.from_dynaconf` instead
(``_dynaconf.py``), which takes the object's layering as it is. dynaconf is imported
only inside these functions.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .. import _environ
from ..errors import ConfigError

__all__ = [
    "DEFAULT_ENV",
    "DEFAULT_FILE",
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "RawSettings",
    "read_settings",
]

DEFAULT_ENV = "development"
DEFAULT_FILE = "settings.toml"
#: Deepest nesting of tables accepted (ours are 3 deep: [env.sources.vault]; a section adds 1).
MAX_DEPTH = 12
#: Largest settings file read (a settings file is a few KB; anything bigger is a mistake).
MAX_FILE_BYTES = 1024 * 1024
_PREFIX = _environ.SETTINGS_PREFIX + "_"
# Variables with the prefix that choose *which* settings, rather than being settings.
_CONTROL_VARIABLES = frozenset({_environ.SETTINGS_ENV, _environ.SETTINGS_FILE})
_PLAIN_TYPES = (str, int, float, bool, list, dict)
# dynaconf's conventional secrets file next to the settings file (read with section=).
_DYNACONF_SECRETS = ".secrets.toml"
# dynaconf's instructions inside a table, not settings (a file shared with a dynaconf app).
_DYNACONF_MARKERS = frozenset({"dynaconf_merge", "dynaconf_merge_unique"})
# dynaconf's names for the layers that are not environments.
_DEFAULT, _GLOBAL = "default", "global"


@dataclass(frozen=True)
class RawSettings:
    """Merged, not yet validated settings, with where each value came from."""

    path: Path | None  # None: no file, every value from variables and defaults
    path_reason: str
    env: str
    env_reason: str
    environments: tuple[str, ...]
    values: dict[str, Any]
    origins: dict[str, str]  # dotted key -> "settings.toml [default]" / "environment variable X"
    #: Where these settings are, for messages: ``settings.toml [production.n3xt]``.
    label: str = ""
    #: The other environments of the same file, layered the same way (validated dry).
    others: tuple[RawSettings, ...] = field(default=(), repr=False)

    @property
    def where(self) -> str:
        """``label``, or ``<path> [<env>]``."""
        return self.label or f"{self.path or 'settings'} [{self.env}]"


def read_settings(
    path: str | os.PathLike[str] | None,
    env: str | None,
    environ: Mapping[str, str],
    *,
    cwd: Path | None = None,
    section: str | None = None,
) -> RawSettings:
    """Locate, parse and layer the settings; every problem becomes a ConfigError."""
    file, path_reason = _locate(path, environ, cwd or Path.cwd())
    section = section.strip().lower() if section else None
    layers: list[tuple[Path, dict[str, dict[str, Any]]]] = []
    if file is not None:
        layers.append((file, _sections(_parse(file), file, section)))
        local = file.with_name(f"{file.stem}.local{file.suffix}")
        if local.is_file():
            layers.append((local, _sections(_parse(local), local, section)))
        secrets = file.with_name(_DYNACONF_SECRETS)
        if section is not None and secrets.is_file():
            # A dynaconf app's secrets file: whatever it holds in our section is read like
            # the rest, so a secret there is refused with where it belongs, not ignored.
            layers.append((secrets, _sections(_parse(secrets), secrets, section)))
    environments = sorted({name for _, tables in layers for name in tables} - {_GLOBAL})
    chosen, env_reason, explicit = _choose_env(env, environ, section)
    if explicit and file is not None and chosen != _DEFAULT and chosen not in environments:
        have = ", ".join(f"[{_table(name, section)}]" for name in environments) or "(none)"
        raise ConfigError(
            f"{file}: environment {chosen!r} ({env_reason}) is not in the file; "
            f"it has: {have}. Add a [{_table(chosen, section)}] table or choose one of those.",
            key="env",
            path=str(file),
            env=chosen,
        )
    common: dict[str, Any] = {
        "environ": environ,
        "file": file,
        "path_reason": path_reason,
        "environments": environments,
        "section": section,
    }
    raw = _layer(layers, chosen, env_reason=env_reason, **common)
    others = tuple(
        _layer(layers, other, env_reason="validated with the chosen one", **common)
        for other in environments
        if other not in (chosen, _DEFAULT)
    )
    return replace(raw, others=others)


def _table(env: str, section: str | None) -> str:
    return f"{env}.{section}" if section else env


def _layer(
    layers: list[tuple[Path, dict[str, dict[str, Any]]]],
    env: str,
    *,
    environ: Mapping[str, str],
    file: Path | None,
    path_reason: str,
    env_reason: str,
    environments: list[str],
    section: str | None,
) -> RawSettings:
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for source, tables in layers:
        for layer in dict.fromkeys((_DEFAULT, env, _GLOBAL)):
            if layer in tables:
                origin = f"{source} [{_table(layer, section)}]"
                _merge(values, tables[layer], origins, origin, prefix="")
    label = f"{file} [{_table(env, section)}]" if file else f"no settings file [{env}]"
    apply_environ(values, origins, environ, file=file, env=env)
    return RawSettings(
        path=file,
        path_reason=path_reason,
        env=env,
        env_reason=env_reason,
        environments=tuple(environments),
        values=values,
        origins=origins,
        label=label,
    )


def _locate(
    path: str | os.PathLike[str] | None, environ: Mapping[str, str], cwd: Path
) -> tuple[Path | None, str]:
    named = environ.get(_environ.SETTINGS_FILE)
    if path is not None:
        file, reason = cwd / Path(path), "given by --settings or the path argument"
    elif named:
        file, reason = cwd / Path(named), f"named by {_environ.SETTINGS_FILE}"
    else:
        file = cwd / DEFAULT_FILE
        reason = f"default ./{DEFAULT_FILE}: no path given, {_environ.SETTINGS_FILE} unset"
    if str(path if path is not None else named) == os.devnull:
        return None, (
            f"no settings file ({'the path' if path is not None else _environ.SETTINGS_FILE} "
            f"is {os.devnull}): built-in defaults and {_PREFIX}* variables"
        )
    try:
        mode = file.stat().st_mode
    except OSError:
        mode = None
    if mode is not None and stat.S_ISREG(mode):
        return file, reason
    token_url_var = f"{_PREFIX}TOKEN_URL"
    if mode is None and path is None and not named and environ.get(token_url_var):
        return None, (
            f"no settings file: ./{DEFAULT_FILE} does not exist and {_environ.SETTINGS_FILE} "
            f"is unset; built-in defaults and {_PREFIX}* variables ({token_url_var} is set)"
        )
    if mode is None:
        state = "does not exist"
    elif stat.S_ISDIR(mode):
        state = "is a directory, not a file"
    else:
        state = "is not a regular file (a device, FIFO or socket)"
    looked = [
        f"  - argument / --settings: {path if path is not None else 'not given'}",
        f"  - {_environ.SETTINGS_FILE}: {named or 'not set'}",
    ]
    if path is None and not named:
        looked.append(f"  - {file}")
    raise ConfigError(
        f"settings file {file} {state} ({reason}). Places looked:\n"
        + "\n".join(looked)
        + f"\nCreate it (see docs/settings.md), pass --settings FILE, set "
        f"{_environ.SETTINGS_FILE}, or run without a file by setting {token_url_var} "
        f"(and {_PREFIX}SOURCE etc. as needed).",
        key="settings",
        path=str(file),
    )


def _parse(file: Path) -> dict[str, Any]:
    from dynaconf.vendor import tomllib  # noqa: PLC0415 - dynaconf only when settings are used

    try:
        size = file.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ConfigError(
                f"settings file {file} is {size} bytes; a settings file is at most "
                f"{MAX_FILE_BYTES} bytes (is this the right file?)",
                path=str(file),
            )
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
    except RecursionError:
        raise ConfigError(
            f"{file}: not usable TOML: its tables or arrays are nested too deeply for the "
            f"parser (settings are at most {MAX_DEPTH} levels deep)",
            path=str(file),
        ) from None
    _check_depth(document, file)
    return document


def _check_depth(document: Mapping[str, Any], file: Path) -> None:
    """Refuse values nested deeper than MAX_DEPTH (iteratively: no recursion to exhaust)."""
    stack: list[tuple[Any, int]] = [(document, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ConfigError(
                f"{file}: tables or arrays nested more than {MAX_DEPTH} levels deep; "
                "n3xt_creds settings are at most 4 deep ([env.n3xt.sources.vault])",
                path=str(file),
            )
        if isinstance(value, dict):
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)


def _sections(
    document: dict[str, Any], file: Path, section: str | None
) -> dict[str, dict[str, Any]]:
    """The environment tables (``[default]``, ``[production]``...) of the document, or,
    with ``section``, the ``section`` sub-table of each (other keys are the app's)."""
    sections: dict[str, dict[str, Any]] = {}
    for name, table in document.items():
        if not isinstance(table, dict):
            if section is not None:
                continue  # the application's own top-level key
            raise ConfigError(
                f"{file}: top-level key `{name}` is outside any environment table; "
                "put it under [default] (or [development], [production], ...)",
                key=name,
                path=str(file),
            )
        if section is None:
            sections[name.lower()] = table
            continue
        ours = {k: v for k, v in table.items() if str(k).lower() == section}
        for value in ours.values():
            if not isinstance(value, dict):
                raise ConfigError(
                    f"{file}: `{name}.{section}` must be a table ([{name}.{section}]) of "
                    "n3xt_creds settings",
                    key=section,
                    path=str(file),
                    env=name.lower(),
                )
            sections[name.lower()] = value
        if not ours:
            sections.setdefault(name.lower(), {})
    return sections


def _choose_env(
    env: str | None, environ: Mapping[str, str], section: str | None
) -> tuple[str, str, bool]:
    if env is not None:
        return env.strip().lower(), "given by --env or the env argument", True
    if environ.get(_environ.SETTINGS_ENV):
        return environ[_environ.SETTINGS_ENV].strip().lower(), f"from {_environ.SETTINGS_ENV}", True
    if section and environ.get(_environ.DYNACONF_ENV):
        # A file shared with a dynaconf app: one environment selector for both.
        chosen = environ[_environ.DYNACONF_ENV].strip().lower()
        return chosen, f"from {_environ.DYNACONF_ENV} (a shared file, section {section!r})", True
    unset = _environ.SETTINGS_ENV + (f" and {_environ.DYNACONF_ENV}" if section else "")
    return DEFAULT_ENV, f"default: no env given and {unset} unset", False


def merge(
    into: dict[str, Any],
    table: Mapping[str, Any],
    origins: dict[str, str],
    origin: str,
    *,
    prefix: str = "",
) -> None:
    """Deep-merge ``table`` into ``into``: tables merge key by key, other values replace."""
    _merge(into, table, origins, origin, prefix=prefix)


def _merge(
    into: dict[str, Any],
    table: Mapping[str, Any],
    origins: dict[str, str],
    origin: str,
    *,
    prefix: str,
) -> None:
    """Deep-merge ``table`` into ``into``: tables merge key by key, other values replace."""
    if prefix.count(".") > MAX_DEPTH:
        raise ConfigError(
            f"{origin}: `{prefix.rstrip('.')}` is nested more than {MAX_DEPTH} levels deep"
        )
    for raw_key, value in table.items():
        key = str(raw_key).lower()
        if key in _DYNACONF_MARKERS:
            continue  # dynaconf's merge marker in a shared file: our tables always deep-merge
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            if not isinstance(into.get(key), dict):
                into[key] = {}
                _forget(origins, dotted)
            origins.setdefault(dotted, origin)
            _merge(into[key], value, origins, origin, prefix=dotted + ".")
        else:
            into[key] = list(value) if isinstance(value, (list, tuple)) else value
            _forget(origins, dotted)
            origins[dotted] = origin


def _forget(origins: dict[str, str], dotted: str) -> None:
    for key in [k for k in origins if k == dotted or k.startswith(dotted + ".")]:
        del origins[key]


def apply_environ(
    values: dict[str, Any],
    origins: dict[str, str],
    environ: Mapping[str, str],
    *,
    file: Path | None,
    env: str,
) -> None:
    """Layer the ``N3XT_CREDS_<KEY>`` variables of ``environ`` over ``values``."""
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
                path=str(file) if file else None,
                env=env,
            )
        try:
            value = parse_conf_data(environ[name], tomlfy=True)
        except Exception as exc:  # dynaconf raises assorted types for bad @casts
            raise ConfigError(
                f"environment variable {name}: its value cannot be parsed "
                f"({type(exc).__name__}); use a plain value, a TOML literal or @int/@float/@bool/@json",
                key=".".join(parts),
                path=str(file) if file else None,
                env=env,
            ) from None
        if not isinstance(value, _PLAIN_TYPES):
            raise ConfigError(
                f"environment variable {name}: @format/@jinja and other lazy dynaconf values "
                "are not supported in n3xt_creds settings; give the value itself",
                key=".".join(parts),
                path=str(file) if file else None,
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
                        path=str(file) if file else None,
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
