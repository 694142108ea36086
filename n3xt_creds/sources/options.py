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

__all__ = [
    "MAX_NUMBER",
    "SECRET_KEY_PATTERN",
    "SourceOptions",
    "is_secret_key",
    "refuse_secret_value",
]

_T = TypeVar("_T")
_MISSING: Any = object()

#: Key names that may hold a secret: checked, with :func:`is_secret_key`, everywhere a
#: settings key could carry one (top-level keys, every source table, ``config`` output).
SECRET_KEY_PATTERN = re.compile(
    r"secret|password|passwd|private_key|access_key|api_key|credential|(^|_)token($|_)",
    re.IGNORECASE,
)
# Endings that are always the secret itself, even though they end like a pointer (_key).
_ALWAYS_SECRET_END = re.compile(
    r"(^|_)(private_key|api_key|access_key|session_token|access_token|refresh_token)$"
    r"|^(secret_key|token|secret|password|passwd|client_secret)$",
    re.IGNORECASE,
)
# Endings that say *where* a secret is rather than holding it: client_secret_var,
# secret_id_file, client_secret_key (the JSON field's name), token_url, ...
_POINTER_END = re.compile(
    r"_(var|variable|file|path|dir|directory|name|field|key|env|mount|url|stage|ttl|role)$",
    re.IGNORECASE,
)
# (source, key) pairs that match the pattern but name a secret rather than hold one: AWS
# calls a secret's name or ARN its "SecretId" (Vault AppRole's secret_id, by contrast, IS one).
_NAMES_NOT_SECRETS = frozenset({("aws", "secret_id"), ("aws", "client_secret_id")})


def is_secret_key(key: str, *, source: str | None = None) -> bool:
    """Would a value under ``key`` (in ``[*.sources.<source>]`` when given) be a secret?

    The one rule for settings: a key whose name mentions a secret, password, token,
    private/API/access key or credential holds one, unless its name says where the
    secret is (``client_secret_var``, ``secret_id_file``, ``token_url``...). So
    ``client_secret_value`` and ``db_password_2`` are secrets; ``client_secret_var`` is not.
    """
    name = key.rsplit(".", 1)[-1].lower()
    if not SECRET_KEY_PATTERN.search(name) or (source, name) in _NAMES_NOT_SECRETS:
        return False
    if _ALWAYS_SECRET_END.search(name):
        return True
    return not _POINTER_END.search(name)


def _where_it_belongs(key: str) -> str:
    """Where the secret under ``key`` belongs: the exact variable, file or store."""
    name = key.lower()
    if name.startswith("sources.vault.") and name.endswith("secret_id"):
        return (
            "an AppRole secret_id belongs in the VAULT_SECRET_ID variable (or the variable "
            "named by `sources.vault.secret_id_var`) or in a file named by "
            "`sources.vault.secret_id_file`"
        )
    if name.startswith("sources.vault.") and name.endswith("token"):
        return (
            "a Vault token belongs in the VAULT_TOKEN variable, or in a Vault Agent sink "
            "file named by `sources.vault.token_file`"
        )
    if name.startswith("sources.aws.") and name.startswith("sources.aws.aws_"):
        return (
            "AWS keys belong to the standard AWS credential chain (AWS_ACCESS_KEY_ID / "
            "AWS_SECRET_ACCESS_KEY variables, ~/.aws/credentials, an instance or task role)"
        )
    return (
        "the N3XT client secret belongs in the N3XT_CLIENT_SECRET variable (source 'env', "
        "or the variable named by `sources.env.client_secret_var`), a mounted file "
        "`client_secret` (source 'file'), Vault ('vault') or AWS Secrets Manager ('aws'); "
        "a settings file or settings object never holds a secret"
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
        f"{where}: `{key}` holds a secret value{found}; {_where_it_belongs(key)}. "
        "Remove it from the settings and put it there.",
        key=key,
        path=path,
        env=env,
    )


#: The largest number any settings getter accepts unless it names its own maximum: past
#: it, timeouts overflow the platform's wait limits (threading's TIMEOUT_MAX is ~292 years).
MAX_NUMBER = 1e9


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
        where: str | None = None,
        dry_run: bool = False,
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
        self._where = where
        #: True when the settings layer only validates this table (an environment or a
        #: source not in use): required keys may be missing, and :meth:`build` does not
        #: construct anything. Names, types, choices and secrets are still checked.
        self.dry_run = dry_run
        # The errors raised by the getters, finish() and not_secret(): about this table's
        # own keys, so a dry run reports them (a factory's other errors it leaves alone).
        self._own_errors: set[int] = set()
        #: Every key a getter asked for: ``name -> (value, given)``, ``given`` False when
        #: the default was used. ``n3xt-creds config`` shows them all, defaults included.
        self.reads: dict[str, tuple[Any, bool]] = {}

    # -- where, for messages -------------------------------------------------------
    def key(self, name: str) -> str:
        """The dotted, user-facing name of ``name`` (``sources.vault.kv_version``)."""
        return f"{self.prefix}.{name}" if self.prefix else name

    @property
    def source_name(self) -> str | None:
        """The source this table belongs to (``vault`` for ``sources.vault``), if any."""
        parts = self.prefix.split(".")
        return parts[1] if len(parts) == 2 and parts[0] == "sources" else None

    def is_own_error(self, error: BaseException) -> bool:
        """Was ``error`` raised by this table's own checks (a key's name, type, value)?"""
        return id(error) in self._own_errors

    def _invalid(self, name: str, problem: str) -> ConfigError:
        error = self.error(name, problem)
        self._own_errors.add(id(error))
        return error

    @property
    def where(self) -> str:
        """``settings.toml [production]``-style location for messages."""
        if self._where:
            return self._where
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
        if self.dry_run:
            return None  # type: ignore[return-value]  # nothing is built in a dry run
        try:
            return factory(**kwargs)
        except ConfigError as exc:
            if exc.key is None or exc.owner is None:
                raise
            error = self.error(exc.key, f"is invalid: {exc.problem}")
        raise error

    def __contains__(self, name: str) -> bool:
        return name in self._table

    def _get(self, name: str, default: Any, placeholder: Any) -> tuple[bool, Any]:
        """``(given, value)``: ``given`` is False when the default (or, in a dry run, a
        placeholder for a required key) is returned and needs no checking."""
        self._used.add(name)
        value = self._table.get(name, _MISSING)
        if value is _MISSING or value is None:
            if default is not _MISSING:
                self.reads[name] = (default, False)
                return False, default
            if self.dry_run:
                self.reads[name] = (None, False)
                return False, placeholder
            raise self._invalid(name, "is required but not set")
        self.reads[name] = (value, True)
        return True, value

    # -- typed getters -------------------------------------------------------------
    def get_str(self, name: str, default: Any = _MISSING, *, choices: tuple[str, ...] = ()) -> Any:
        """A non-empty string (or ``default`` when unset); ``choices`` restricts it."""
        given, value = self._get(name, default, choices[0] if choices else "unset")
        if not given:
            return value
        if not isinstance(value, str):
            raise self._invalid(
                name, f"must be a string, got {type(value).__name__} {_safe(value)}"
            )
        if not value.strip():
            raise self._invalid(name, "must not be empty")
        if choices and value not in choices:
            # Case and surrounding spaces are not worth an error ("Vault" means "vault").
            folded = {choice.lower(): choice for choice in choices}
            if value.strip().lower() in folded:
                return folded[value.strip().lower()]
            hint = _suggest(value, choices)
            raise self._invalid(name, f"must be one of {', '.join(choices)}; got {value!r}{hint}")
        return value

    def get_int(
        self,
        name: str,
        default: Any = _MISSING,
        *,
        choices: tuple[int, ...] = (),
        positive: bool = False,
        maximum: int | None = None,
    ) -> Any:
        """An integer (strings of digits from environment variables are accepted), at most
        ``maximum`` (default :data:`MAX_NUMBER`)."""
        given, value = self._get(name, default, choices[0] if choices else 1)
        if not given:
            return value
        if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._invalid(
                name, f"must be an integer, got {type(value).__name__} {_safe(value)}"
            )
        if choices and value not in choices:
            raise self._invalid(
                name, f"must be one of {', '.join(map(repr, choices))}; got {value}"
            )
        if positive and value <= 0:
            raise self._invalid(name, f"must be greater than 0; got {value}")
        limit = MAX_NUMBER if maximum is None else maximum
        if value > limit:
            raise self._invalid(name, f"must be at most {limit:g}; got {value:g}")
        return value

    def get_float(
        self,
        name: str,
        default: Any = _MISSING,
        *,
        positive: bool = False,
        minimum: Any = None,
        maximum: float | None = None,
    ) -> Any:
        """A number of seconds or similar (ints are accepted), finite, at most ``maximum``
        (default :data:`MAX_NUMBER`: past it, waits overflow the platform's limits)."""
        given, value = self._get(name, default, 1.0)
        if not given:
            return value
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise self._invalid(
                    name, "must be a number, got a string that is not one"
                ) from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self._invalid(
                name, f"must be a number, got {type(value).__name__} {_safe(value)}"
            )
        if not math.isfinite(value):
            raise self._invalid(name, f"must be a finite number; got {value}")
        if positive and value <= 0:
            raise self._invalid(name, f"must be greater than 0; got {value}")
        if minimum is not None and value < minimum:
            raise self._invalid(name, f"must be at least {minimum}; got {value}")
        limit = MAX_NUMBER if maximum is None else maximum
        if value > limit:
            raise self._invalid(name, f"must be at most {limit:g}; got {value:g}")
        return float(value)

    def get_bool(self, name: str, default: Any = _MISSING) -> Any:
        """A boolean (``true``/``false``, also as strings from environment variables)."""
        given, value = self._get(name, default, False)
        if not given:
            return value
        if isinstance(value, str) and value.strip().lower() in _BOOL_WORDS:
            value = value.strip().lower() in {"true", "1", "yes"}
        if not isinstance(value, bool):
            raise self._invalid(
                name, f"must be true or false, got {type(value).__name__} {_safe(value)}"
            )
        return value

    def get_str_list(self, name: str, default: Any = _MISSING) -> Any:
        """A list of non-empty strings (a comma-separated string is accepted)."""
        given, value = self._get(name, default, [])
        if not given:
            return value
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, (list, tuple)) or not all(
            isinstance(v, str) and v.strip() for v in value
        ):
            raise self._invalid(name, f"must be a list of non-empty strings, got {_safe(value)}")
        return list(value)

    def not_secret(self, name: str) -> None:
        """Refuse ``name`` if it is present: it would hold a secret value."""
        self._used.add(name)
        self._forbidden.add(name)
        if self._table.get(name) not in (None, ""):
            raise self._secret(name)

    def _secret(self, name: str) -> ConfigError:
        error = refuse_secret_value(
            self.key(name),
            where=self.where,
            path=self.path,
            env=self.env,
            found_in=self.origins.get(self.key(name)),
        )
        self._own_errors.add(id(error))
        return error

    def finish(self) -> None:
        """Refuse keys that no getter asked for, suggesting the closest valid key."""
        unknown = sorted(set(self._table) - self._used)
        for name in unknown:
            if is_secret_key(name, source=self.source_name) and self._table[name] not in (
                None,
                "",
            ):
                raise self._secret(name)
        if unknown:
            name = unknown[0]
            valid_keys = sorted(self._used - self._forbidden)
            match = difflib.get_close_matches(name, valid_keys, n=1, cutoff=0.6)
            hint = f": did you mean `{match[0]}`?" if match else "."
            valid = ", ".join(valid_keys) or "(none)"
            raise self._invalid(name, f"is not a known setting{hint} Valid keys here: {valid}.")


_BOOL_WORDS = frozenset({"true", "false", "1", "0", "yes", "no"})


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
