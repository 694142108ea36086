"""SourceOptions: one source's settings table, with typed getters that explain mistakes.

Every source that can be built from ``settings.toml`` — the built-in ones and the
third-party ones registered under the ``n3xt_creds.sources`` entry-point group —
receives its ``[<env>.sources.<name>]`` table wrapped in a :class:`SourceOptions`
and reads it through these getters. Each getter validates the type, and every
error names the key, the settings file and the environment, and says what was
expected; :meth:`SourceOptions.finish` then refuses any key nobody asked for, with
the closest valid key suggested. A plugin's factory looks like this::

    def from_options(options: SourceOptions) -> MySource:
        source = MySource(
            vault_name=options.get_str("vault_name"),
            timeout=options.get_float("timeout", default=5.0, positive=True),
        )
        options.finish()
        return source

``options.environ`` is the environment the settings were read from (the process
environment unless the application injected one): a factory that falls back to
variables such as ``VAULT_ADDR`` reads them from it, never from ``os.environ``
directly, so that tests and embedding applications see one consistent environment.
``options.origins`` says where each dotted key got its value, for messages.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ..errors import ConfigError

__all__ = ["SECRET_KEY_PATTERN", "SourceOptions", "refuse_secret_value"]

_T = TypeVar("_T")
_MISSING: Any = object()

#: Key names that must never carry a value in a settings file.
SECRET_KEY_PATTERN = re.compile(
    r"secret|password|passwd|private_key|access_key|api_key|credential|(^|_)token$",
    re.IGNORECASE,
)

_WHERE_SECRETS_BELONG = (
    "secrets belong in an environment variable (source 'env'), a mounted file ('file'), "
    "Vault ('vault') or AWS Secrets Manager ('aws'), never in settings"
)


def refuse_secret_value(
    key: str,
    *,
    where: str,
    path: str | None = None,
    env: str | None = None,
    found_in: str | None = None,
) -> ConfigError:
    """The error for a secret value found at ``key`` (the value itself is never shown)."""
    found = f" (found in: {found_in})" if found_in else ""
    return ConfigError(
        f"{where}: `{key}` holds a secret value; {_WHERE_SECRETS_BELONG}. "
        f"Remove it from the settings and put it where the chosen source reads it.{found}",
        key=key,
        path=path,
        env=env,
    )


class SourceOptions:
    """Typed, validating access to one source's settings table.

    ``table`` is the plain mapping of the source's keys; ``prefix`` is the dotted key
    of the table (``"sources.vault"``) and ``path``/``env`` say where it came from,
    all used only to word error messages.
    """

    def __init__(
        self,
        table: Mapping[str, Any] | None,
        *,
        prefix: str,
        path: str | None = None,
        env: str | None = None,
        environ: Mapping[str, str] | None = None,
        origins: Mapping[str, str] | None = None,
    ) -> None:
        self._table = {str(k).lower(): v for k, v in (table or {}).items()}
        self._used: set[str] = set()
        # Keys refused by not_secret(): known names, but never suggested as valid.
        self._forbidden: set[str] = set()
        self.prefix = prefix
        self.path = path
        self.env = env
        #: The environment variables a factory reads fallbacks from (part of the contract).
        self.environ: Mapping[str, str] = os.environ if environ is None else environ
        #: Where each dotted key got its value (``"environment variable N3XT_CREDS_X"``...).
        self.origins: Mapping[str, str] = origins or {}

    # -- where, for messages -------------------------------------------------------
    def key(self, name: str) -> str:
        """The dotted, user-facing name of ``name`` (``sources.vault.kv_version``)."""
        return f"{self.prefix}.{name}" if self.prefix else name

    @property
    def where(self) -> str:
        """``settings.toml [production]``-style location for messages."""
        parts = [self.path or "settings"]
        if self.env:
            parts.append(f"[{self.env}]")
        return " ".join(parts)

    def error(self, name: str, problem: str) -> ConfigError:
        """A ConfigError for key ``name`` that names the file, the environment and, when a
        variable set the value, that variable."""
        origin = self.origins.get(self.key(name), "")
        set_by = f" (set by {origin})" if origin.startswith("environment variable") else ""
        return ConfigError(
            f"{self.where}: `{self.key(name)}` {problem}{set_by}",
            key=self.key(name),
            path=self.path,
            env=self.env,
        )

    def build(self, factory: Callable[..., _T], /, **kwargs: Any) -> _T:
        """``factory(**kwargs)``, with a constructor's :class:`ConfigError` about one
        argument reworded for this table (``settings.toml [production]:
        `sources.vault.kv_version` must be 1 or 2, got 3``)."""
        try:
            return factory(**kwargs)
        except ConfigError as exc:
            if exc.key is None or exc.owner is None:
                raise
            error = self.error(exc.key, f"is invalid: {exc.problem}")
        raise error

    def __contains__(self, name: str) -> bool:
        return name in self._table

    def _get(self, name: str, default: Any) -> Any:
        self._used.add(name)
        value = self._table.get(name, _MISSING)
        if value is _MISSING or value is None:
            if default is _MISSING:
                raise self.error(name, "is required but not set")
            return default
        return value

    # -- typed getters -------------------------------------------------------------
    def get_str(self, name: str, default: Any = _MISSING, *, choices: tuple[str, ...] = ()) -> Any:
        """A non-empty string (or ``default`` when unset); ``choices`` restricts it."""
        value = self._get(name, default)
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, str):
            raise self.error(name, f"must be a string, got {type(value).__name__} {_safe(value)}")
        if not value.strip():
            raise self.error(name, "must not be empty")
        if choices and value not in choices:
            hint = _suggest(value, choices)
            raise self.error(name, f"must be one of {', '.join(choices)}; got {value!r}{hint}")
        return value

    def get_int(
        self,
        name: str,
        default: Any = _MISSING,
        *,
        choices: tuple[int, ...] = (),
        positive: bool = False,
    ) -> Any:
        """An integer (strings of digits from environment variables are accepted)."""
        value = self._get(name, default)
        if value is default and default is not _MISSING:
            return value
        if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(name, f"must be an integer, got {type(value).__name__} {_safe(value)}")
        if choices and value not in choices:
            raise self.error(name, f"must be one of {', '.join(map(repr, choices))}; got {value}")
        if positive and value <= 0:
            raise self.error(name, f"must be greater than 0; got {value}")
        return value

    def get_float(
        self, name: str, default: Any = _MISSING, *, positive: bool = False, minimum: Any = None
    ) -> Any:
        """A number of seconds or similar; ints are accepted."""
        value = self._get(name, default)
        if value is default and default is not _MISSING:
            return value
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise self.error(name, "must be a number, got a string that is not one") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(name, f"must be a number, got {type(value).__name__} {_safe(value)}")
        if not math.isfinite(value):
            raise self.error(name, f"must be a finite number; got {value}")
        if positive and value <= 0:
            raise self.error(name, f"must be greater than 0; got {value}")
        if minimum is not None and value < minimum:
            raise self.error(name, f"must be at least {minimum}; got {value}")
        return float(value)

    def get_bool(self, name: str, default: Any = _MISSING) -> Any:
        """A boolean (``true``/``false``, also as strings from environment variables)."""
        value = self._get(name, default)
        if isinstance(value, str) and value.strip().lower() in {
            "true",
            "false",
            "1",
            "0",
            "yes",
            "no",
        }:
            value = value.strip().lower() in {"true", "1", "yes"}
        if not isinstance(value, bool):
            raise self.error(
                name, f"must be true or false, got {type(value).__name__} {_safe(value)}"
            )
        return value

    def get_str_list(self, name: str, default: Any = _MISSING) -> Any:
        """A list of non-empty strings (a comma-separated string is accepted)."""
        value = self._get(name, default)
        if value is default and default is not _MISSING:
            return value
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, (list, tuple)) or not all(
            isinstance(v, str) and v.strip() for v in value
        ):
            raise self.error(name, f"must be a list of non-empty strings, got {_safe(value)}")
        return list(value)

    def not_secret(self, name: str) -> None:
        """Refuse ``name`` if it is present: it would hold a secret value."""
        self._used.add(name)
        self._forbidden.add(name)
        if self._table.get(name) not in (None, ""):
            raise refuse_secret_value(
                self.key(name), where=self.where, path=self.path, env=self.env
            )

    def finish(self) -> None:
        """Refuse keys that no getter asked for, suggesting the closest valid key."""
        unknown = sorted(set(self._table) - self._used)
        for name in unknown:
            if SECRET_KEY_PATTERN.search(name) and self._table[name] not in (None, ""):
                raise refuse_secret_value(
                    self.key(name), where=self.where, path=self.path, env=self.env
                )
        if unknown:
            name = unknown[0]
            valid_keys = sorted(self._used - self._forbidden)
            match = difflib.get_close_matches(name, valid_keys, n=1, cutoff=0.6)
            hint = f": did you mean `{match[0]}`?" if match else "."
            valid = ", ".join(valid_keys) or "(none)"
            raise self.error(name, f"is not a known setting{hint} Valid keys here: {valid}.")


def _suggest(value: str, candidates: Any) -> str:
    match = difflib.get_close_matches(value, list(candidates), n=1, cutoff=0.6)
    return f" — did you mean `{match[0]}`?" if match else "."


def _safe(value: object) -> str:
    """Show a wrong-typed value only when it cannot be a pasted secret (numbers, bools)."""
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    if isinstance(value, (list, tuple, dict)):
        return f"with {len(value)} item(s)"
    return "(value not shown)"
