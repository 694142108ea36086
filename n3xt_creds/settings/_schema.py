"""Validating settings: the pinned keys, their types and defaults, and the Settings object.

Every error names the key, the file and the environment, says what was expected,
and — when the value came from an ``N3XT_CREDS_*`` variable — names the variable.
A value under a secret-looking key is refused without being echoed.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .._core.arguments import MAX_SECONDS, token_url_problem
from ..errors import ConfigError
from ..sources.options import SourceOptions, is_secret_key, refuse_secret_value
from ._load import RawSettings
from ._registry import RESERVED_NAMES, SourceRegistry
from ._shared import SHARED_CACHE_DEFAULTS, validate_shared_cache

__all__ = ["DEFAULTS", "TOP_LEVEL_KEYS", "Settings", "validate", "validate_dry"]

#: Built-in defaults of the top-level keys (``token_url`` has none: it must be set).
DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {
        "source": "env",
        "chain": ("env", "file"),
        "refresh_margin": 300.0,
        "timeout": 10.0,
        "api_hosts": ("*.n3xt.io",),
    }
)
TOP_LEVEL_KEYS = (
    "token_url",
    "source",
    "chain",
    "refresh_margin",
    "timeout",
    "api_hosts",
    "sources",
    "shared_cache",
)
_BUILT_IN = "built-in default"


@dataclass(frozen=True)
class Settings:
    """Validated, effective settings, and where each value came from.

    Built by :func:`n3xt_creds.settings.load_settings` or :func:`n3xt_creds.from_dynaconf`;
    immutable. ``origin(key)`` says which layer set a dotted key
    (``"settings.toml [production]"``, ``"environment variable N3XT_CREDS_SOURCE"`` or
    ``"built-in default"``); ``where`` names the settings for messages
    (``settings.toml [production.n3xt]``).
    """

    path: Path | None
    path_reason: str
    env: str
    env_reason: str
    environments: tuple[str, ...]
    token_url: str
    source: str
    chain: tuple[str, ...]
    refresh_margin: float
    timeout: float
    api_hosts: tuple[str, ...]
    sources: Mapping[str, Mapping[str, Any]]
    origins: Mapping[str, str] = field(repr=False)
    environ: Mapping[str, str] | None = field(default=None, repr=False, compare=False)
    #: ``[*.shared_cache]``: backend (none|file|redis), directory, url_var.
    shared_cache: Mapping[str, Any] = field(default_factory=lambda: SHARED_CACHE_DEFAULTS)
    label: str = ""

    @property
    def where(self) -> str:
        """``/srv/app/settings.toml [production]``, for messages."""
        return self.label or f"{self.path or 'settings'} [{self.env}]"

    @property
    def source_names(self) -> tuple[str, ...]:
        """The sources that will be built: the chain's members, or the one source."""
        return self.chain if self.source == "chain" else (self.source,)

    def origin(self, key: str) -> str:
        """Where the dotted ``key`` got its value."""
        return self.origins.get(key, _BUILT_IN)

    def options_for(self, name: str, *, dry_run: bool = False) -> SourceOptions:
        """The ``[*.sources.<name>]`` table, ready for the source's ``from_options``."""
        return SourceOptions(
            self.sources.get(name),
            prefix=f"sources.{name}",
            path=str(self.path) if self.path else None,
            env=self.env,
            origins=self.origins,
            environ=self.environ,
            where=self.where,
            dry_run=dry_run,
        )

    def effective(self) -> list[tuple[str, Any, str]]:
        """Every effective value as ``(dotted key, value, origin)``, secret-looking keys redacted."""
        rows: list[tuple[str, Any, str]] = [
            ("token_url", self.token_url, self.origin("token_url")),
            ("source", self.source, self.origin("source")),
            ("chain", list(self.chain), self.origin("chain")),
            ("refresh_margin", self.refresh_margin, self.origin("refresh_margin")),
            ("timeout", self.timeout, self.origin("timeout")),
            ("api_hosts", list(self.api_hosts), self.origin("api_hosts")),
        ]
        for name in sorted(self.sources):
            for key in sorted(self.sources[name]):
                dotted = f"sources.{name}.{key}"
                value = self.sources[name][key]
                if is_secret_key(key, source=name) and not isinstance(value, bool):
                    value = "<redacted>"
                rows.append((dotted, value, self.origin(dotted)))
        for key in ("backend", "directory", "url_var", "timeout"):
            dotted = f"shared_cache.{key}"
            rows.append((dotted, self.shared_cache[key], self.origin(dotted)))
        return rows


def validate(
    raw: RawSettings, registry: SourceRegistry, environ: Mapping[str, str] | None
) -> Settings:
    """Check the top-level keys and the ``sources`` tables' names; return :class:`Settings`.

    Each selected source's own table is validated by its factory (``build_source``);
    every other source table, and every other environment of the file, is validated
    dry by :func:`validate_dry`.
    """
    options = _options(raw, environ)
    common = _common(raw, options, registry, environ)
    token_url = _token_url(options)
    return Settings(
        path=raw.path,
        path_reason=raw.path_reason,
        env=raw.env,
        env_reason=raw.env_reason,
        environments=raw.environments,
        token_url=token_url,
        origins=MappingProxyType(dict(raw.origins)),
        environ=environ,
        label=raw.where,
        **common,
    )


def validate_dry(
    raw: RawSettings,
    registry: SourceRegistry,
    environ: Mapping[str, str] | None,
    *,
    skip: tuple[str, ...] = (),
) -> None:
    """Validate ``raw`` without building anything: key names, types, choices, ranges and
    secrets of the top level and of every source table (``token_url`` and required keys
    may be missing: a deployment may set them by variable). ``skip`` names source
    tables that will be built for real anyway."""
    options = _options(raw, environ)
    common = _common(raw, options, registry, environ)
    url = raw.values.get("token_url")
    if url is not None and not (isinstance(url, str) and "<" in url):
        _token_url(options)  # a <project-id> placeholder is for the deployment to replace
    settings = Settings(
        path=raw.path,
        path_reason=raw.path_reason,
        env=raw.env,
        env_reason=raw.env_reason,
        environments=raw.environments,
        token_url="",
        origins=raw.origins,
        environ=environ,
        label=raw.where,
        **common,
    )
    for name in sorted(settings.sources):
        if name in skip:
            continue
        table = settings.options_for(name, dry_run=True)
        try:
            factory = registry.factory(name)
        except ConfigError:
            continue  # not importable here (a missing extra): checked when it is selected
        try:
            factory(table)
            table.finish()
        except ConfigError as exc:
            if table.is_own_error(exc):
                raise
        except Exception:  # noqa: S112 - a plugin's factory may not support a dry run
            continue


def _options(raw: RawSettings, environ: Mapping[str, str] | None) -> SourceOptions:
    return SourceOptions(
        raw.values,
        prefix="",
        path=str(raw.path) if raw.path else None,
        env=raw.env,
        origins=raw.origins,
        environ=environ,
        where=raw.where,
    )


def _common(
    raw: RawSettings,
    options: SourceOptions,
    registry: SourceRegistry,
    environ: Mapping[str, str] | None,
) -> dict[str, Any]:
    """Every top-level check but token_url's, as Settings keyword arguments."""
    _refuse_secrets(raw)
    _refuse_unknown(raw, options)
    names = registry.names
    source = _source_name(options.get_str("source", default=DEFAULTS["source"]), names)
    if source not in names and source not in RESERVED_NAMES:
        raise options.error("source", _unknown_name(source, (*names, "chain")))
    chain = tuple(
        _source_name(member, names)
        for member in options.get_str_list("chain", default=list(DEFAULTS["chain"]))
    )
    if not chain:
        raise options.error("chain", "must name at least one source")
    for member in chain:
        if member == "chain":
            raise options.error("chain", "cannot contain `chain` itself")
        if member not in names:
            raise options.error("chain", f"has {member!r}: " + _unknown_name(member, names))
    if len(set(chain)) != len(chain):
        raise options.error("chain", f"names a source twice: {list(chain)}")
    refresh_margin = options.get_float(
        "refresh_margin",
        default=DEFAULTS["refresh_margin"],
        positive=True,
        maximum=MAX_SECONDS["refresh_margin"],
    )
    timeout = options.get_float(
        "timeout", default=DEFAULTS["timeout"], positive=True, maximum=MAX_SECONDS["timeout"]
    )
    api_hosts = tuple(options.get_str_list("api_hosts", default=list(DEFAULTS["api_hosts"])))
    if not api_hosts:
        raise options.error("api_hosts", "must list at least one host pattern, e.g. ['*.n3xt.io']")
    sources = _source_tables(raw, options, names)
    return {
        "source": source,
        "chain": chain,
        "refresh_margin": refresh_margin,
        "timeout": timeout,
        "api_hosts": api_hosts,
        "sources": MappingProxyType({k: MappingProxyType(dict(v)) for k, v in sources.items()}),
        "shared_cache": validate_shared_cache(
            raw.values.get("shared_cache"),
            path=str(raw.path) if raw.path else raw.where,
            env=raw.env,
            origins=raw.origins,
            environ=environ,
            where=raw.where,
        ),
    }


def _source_name(value: str, names: tuple[str, ...]) -> str:
    """A source name as registered: case and surrounding spaces do not matter."""
    folded = {name.lower(): name for name in (*names, *RESERVED_NAMES)}
    return folded.get(value.strip().lower(), value)


def _refuse_secrets(raw: RawSettings) -> None:
    """A secret-looking top-level key with a value is refused wherever it came from."""
    for key, value in raw.values.items():
        if is_secret_key(key) and value not in (None, "") and not isinstance(value, dict):
            raise refuse_secret_value(
                key,
                where=raw.where,
                path=str(raw.path) if raw.path else None,
                env=raw.env,
                found_in=raw.origins.get(key, "settings"),
            )


def _refuse_unknown(raw: RawSettings, options: SourceOptions) -> None:
    for key in sorted(raw.values):
        if key not in TOP_LEVEL_KEYS:
            match = difflib.get_close_matches(key, TOP_LEVEL_KEYS, n=1, cutoff=0.6)
            hint = f": did you mean `{match[0]}`?" if match else "."
            raise options.error(
                key, f"is not a known setting{hint} Valid keys: {', '.join(TOP_LEVEL_KEYS)}"
            )


def _token_url(options: SourceOptions) -> str:
    url: str = options.get_str("token_url")
    if "<" in url or ">" in url:
        raise options.error(
            "token_url",
            "still contains a placeholder like <project-id>; use your project's token URL "
            "from the N3XT console",
        )
    problem = token_url_problem(url)
    if problem is not None:
        raise options.error("token_url", problem)
    return url


def _source_tables(
    raw: RawSettings, options: SourceOptions, names: tuple[str, ...]
) -> dict[str, dict[str, Any]]:
    tables = raw.values.get("sources", {})
    if not isinstance(tables, dict):
        raise options.error(
            "sources", "must be a table of per-source tables, e.g. [default.sources.env]"
        )
    for name, table in sorted(tables.items()):
        if name not in names:
            hint = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
            suggestion = f": did you mean `sources.{hint[0]}`?" if hint else "."
            raise ConfigError(
                f"{raw.where}: `sources.{name}`{suggestion} There is no source named "
                f"{name!r}; known sources: {', '.join(names)} (third-party sources register "
                "under the 'n3xt_creds.sources' entry-point group)"
                + _set_by(raw, f"sources.{name}"),
                key=f"sources.{name}",
                path=options.path,
                env=raw.env,
            )
        if not isinstance(table, dict):
            raise options.error(f"sources.{name}", "must be a table of that source's options")
        # Every table, selected or not, in every environment: one rule (is_secret_key).
        for key, value in table.items():
            if is_secret_key(key, source=name) and value not in (None, ""):
                raise refuse_secret_value(
                    f"sources.{name}.{key}",
                    where=raw.where,
                    path=options.path,
                    env=raw.env,
                    found_in=raw.origins.get(f"sources.{name}.{key}"),
                )
    return tables


def _unknown_name(name: str, names: tuple[str, ...]) -> str:
    match = difflib.get_close_matches(name.lower(), names, n=1, cutoff=0.6)
    hint = f" — did you mean `{match[0]}`?" if match else "."
    return (
        f"names an unknown source {name!r}{hint} Known sources: {', '.join(names)} "
        "(third-party sources register under the 'n3xt_creds.sources' entry-point group)"
    )


def _set_by(raw: RawSettings, key: str) -> str:
    origin = raw.origins.get(key, "")
    return f" (set by {origin})" if origin.startswith("environment variable") else ""
