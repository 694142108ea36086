"""Settings: ``settings.toml`` + ``N3XT_CREDS_*`` variables → a source → an Authenticator.

The everyday entry point is :func:`from_settings`::

    auth = n3xt_creds.from_settings()                        # ./settings.toml, env from N3XT_CREDS_ENV
    auth = n3xt_creds.from_settings("settings.toml", env="production")

Which file: the ``path`` argument, else ``N3XT_CREDS_SETTINGS``, else ``./settings.toml``.
Which environment: the ``env`` argument, else ``N3XT_CREDS_ENV``, else ``development``.
The environment's tables deep-merge over ``[default]``; then any key is overridden by
``N3XT_CREDS_<KEY>`` (``__`` nests: ``N3XT_CREDS_SOURCES__AWS__SECRET_ID``), so
``N3XT_CREDS_SOURCE=aws`` switches the backend at deploy time with no code change.

All validation happens here, before any network call; every problem is a
:class:`~n3xt_creds.ConfigError` naming the key, the file and the environment.
The steps are public too — :func:`load_settings` and :func:`build_source` — for
tools (``n3xt-creds check``) that want to report on each one.

Applications configured with dynaconf hand over their own object instead:
:func:`from_dynaconf` reads our keys from its ``n3xt`` section (docs/dynaconf.md).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from typing import Any

from ..authenticator import Authenticator
from ..errors import ConfigError, CredentialsNotFoundError, SourceError
from ..sources.chain import ChainSource
from ._load import read_settings
from ._registry import ENTRY_POINT_GROUP, SourceRegistry
from ._schema import Settings, validate, validate_dry
from ._shared import build_shared_cache

__all__ = [
    "ENTRY_POINT_GROUP",
    "Settings",
    "SourceRegistry",
    "build_authenticator",
    "build_source",
    "check_environments",
    "from_dynaconf",
    "from_settings",
    "load_dynaconf",
    "load_settings",
]

#: Built-in sources that need an optional dependency: (module to find, extra to install).
_EXTRAS: Mapping[str, tuple[str, str]] = {"vault": ("hvac", "vault"), "aws": ("boto3", "aws")}


def load_settings(
    path: str | os.PathLike[str] | None = None,
    env: str | None = None,
    *,
    section: str | None = None,
    environ: Mapping[str, str] | None = None,
    registry: SourceRegistry | None = None,
) -> Settings:
    """Read and validate the settings (no network); see the module docstring for the rules.

    ``section`` reads our keys from ``[<env>.<section>]`` tables of a file the
    application shares (``section="n3xt"``: ``[default.n3xt]``, ``[production.n3xt]``);
    the file's other keys are the application's and are left alone.
    ``environ`` replaces :data:`os.environ` for choosing the file and environment, for
    ``N3XT_CREDS_*`` overrides, and for sources that read variables (EnvSource).
    ``registry`` replaces the discovered source registry (built-ins + entry points).
    Every other environment of the file is validated too (key names, types, secrets:
    a typo in ``[default.sources.vault]`` fails in development, not first in production).
    """
    registry = registry if registry is not None else SourceRegistry()
    environ = os.environ if environ is None else environ
    raw = read_settings(path, env, environ, section=section)
    settings = validate(raw, registry, environ)
    validate_dry(raw, registry, environ, skip=settings.source_names)
    for other in raw.others:
        validate_dry(other, registry, environ)
    return settings


def load_dynaconf(
    settings: Any,
    section: str = "n3xt",
    *,
    environ: Mapping[str, str] | None = None,
    registry: SourceRegistry | None = None,
) -> Settings:
    """Validated :class:`Settings` from the ``section`` of an application's Dynaconf object
    (its current environment, files and layering), ``N3XT_CREDS_*`` variables on top."""
    from ._dynaconf import read_dynaconf  # noqa: PLC0415 - only for dynaconf users

    registry = registry if registry is not None else SourceRegistry()
    environ = os.environ if environ is None else environ
    raw = read_dynaconf(settings, section, environ)
    validated = validate(raw, registry, environ)
    validate_dry(raw, registry, environ, skip=validated.source_names)
    return validated


def check_environments(
    path: str | os.PathLike[str] | None = None,
    *,
    section: str | None = None,
    environ: Mapping[str, str] | None = None,
    registry: SourceRegistry | None = None,
) -> list[tuple[str, ConfigError | None]]:
    """Validate every environment of the settings file without network and without
    building a source: ``[(env, None or its first ConfigError), ...]``.

    What ``n3xt-creds check --all-envs`` runs in CI: key names, types, choices, ranges
    and secrets of every environment's tables (``token_url`` and keys a deployment sets
    by variable may be missing).
    """
    registry = registry if registry is not None else SourceRegistry()
    environ = os.environ if environ is None else environ
    environ = {k: v for k, v in environ.items() if k != "N3XT_CREDS_ENV"}
    first = read_settings(path, "default", environ, section=section)
    results: list[tuple[str, ConfigError | None]] = []
    for raw in (first, *first.others):
        try:
            validate_dry(raw, registry, environ)
        except ConfigError as exc:
            results.append((raw.env, exc))
        else:
            results.append((raw.env, None))
    return results


def build_source(settings: Settings, *, registry: SourceRegistry | None = None) -> Any:
    """Build the credential source the settings select (a ChainSource for ``chain``).

    Each source's factory validates its own ``[*.sources.<name>]`` table; keys it did
    not read are refused afterwards, so a typo in a plugin's table is caught too. A
    built-in source whose optional dependency is missing is a ConfigError naming the
    extra to install.
    """
    registry = registry if registry is not None else SourceRegistry()
    for name in settings.source_names:
        _require_extra(settings, name, registry)
    sources = [_build_one(settings, name, registry) for name in settings.source_names]
    if settings.source == "chain":
        return ChainSource(sources)
    return sources[0]


def build_authenticator(settings: Settings, source: Any) -> Authenticator:
    """The Authenticator for ``source`` with the settings' token_url, margins, hosts and
    shared cache."""
    shared_cache = build_shared_cache(
        settings.shared_cache,
        path=str(settings.path) if settings.path else settings.where,
        env=settings.env,
        origins=settings.origins,
        environ=settings.environ,
        where=settings.where,
    )
    try:
        return Authenticator(
            source,
            token_url=settings.token_url,
            refresh_margin=settings.refresh_margin,
            timeout=settings.timeout,
            api_hosts=settings.api_hosts,
            shared_cache=shared_cache,
        )
    except ConfigError as exc:
        raise ConfigError(
            f"{settings.where}: {exc}",
            key=exc.key,
            path=str(settings.path) if settings.path else None,
            env=settings.env,
        ) from None


def from_settings(
    path: str | os.PathLike[str] | None = None,
    env: str | None = None,
    *,
    section: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Authenticator:
    """Build an :class:`~n3xt_creds.Authenticator` from ``settings.toml`` and the environment.

    ``path`` and ``env`` choose the file and environment (defaults: ``N3XT_CREDS_SETTINGS``
    or ``./settings.toml``; ``N3XT_CREDS_ENV`` or ``development``). With no file at all,
    ``N3XT_CREDS_TOKEN_URL`` (and any other ``N3XT_CREDS_*``) plus the built-in defaults
    are enough. ``section="n3xt"`` reads ``[<env>.n3xt]`` tables of a file the app
    shares. ``environ`` replaces :data:`os.environ` (tests). Raises
    :class:`~n3xt_creds.ConfigError` for any problem with the settings; no network call
    is made until the first token is needed.
    """
    registry = SourceRegistry()
    settings = load_settings(path, env, section=section, environ=environ, registry=registry)
    return build_authenticator(settings, build_source(settings, registry=registry))


def from_dynaconf(
    settings: Any,
    section: str = "n3xt",
    *,
    environ: Mapping[str, str] | None = None,
) -> Authenticator:
    """Build an :class:`~n3xt_creds.Authenticator` from the application's own Dynaconf object.

    For applications already configured with dynaconf: our keys live in their
    ``section`` (``[default.n3xt]``, ``[production.n3xt]``... in their ``settings.toml``),
    read in the object's current environment with the layering the application set up
    (``ENV_FOR_DYNACONF``, ``settings.local.toml``, ``[global]``, its env-var prefix,
    ``dynaconf_merge``), so one environment selector deploys the app and us together.
    ``N3XT_CREDS_*`` variables still override; validation, provenance and the refusal of
    secrets are those of :func:`from_settings`. A secret found in the section (from
    ``.secrets.toml`` or dynaconf's Vault loader) is refused: the source must re-read it
    at every refresh and after a rotation, which a value frozen in a settings object
    cannot do. See ``docs/dynaconf.md``.
    """
    registry = SourceRegistry()
    validated = load_dynaconf(settings, section, environ=environ, registry=registry)
    return build_authenticator(validated, build_source(validated, registry=registry))


def _require_extra(settings: Settings, name: str, registry: SourceRegistry) -> None:
    if name not in _EXTRAS or registry.origin(name) != "built-in":
        return
    module, extra = _EXTRAS[name]
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: sys.modules[module] is None
        found = False
    if not found:
        raise ConfigError(
            f"{settings.where}: source {name!r} (from {settings.origin('source')}) needs "
            f"{module}, which is not installed: pip install 'n3xt-creds[{extra}]'",
            key="source",
            path=str(settings.path) if settings.path else None,
            env=settings.env,
        )


def _build_one(settings: Settings, name: str, registry: SourceRegistry) -> Any:
    factory = registry.factory(name)
    options = settings.options_for(name)
    try:
        source = factory(options)
    except (ConfigError, CredentialsNotFoundError, SourceError):
        raise
    except Exception as exc:
        # A third-party factory's own message could quote a value; show only the type.
        raise ConfigError(
            f"{settings.where}: source {name!r} ({registry.origin(name)}) failed to build "
            f"from `sources.{name}`: {type(exc).__name__}. Check that table's keys.",
            key=f"sources.{name}",
            path=str(settings.path) if settings.path else None,
            env=settings.env,
        ) from None
    options.finish()
    if not callable(getattr(source, "get_credentials", None)):
        raise ConfigError(
            f"source {name!r} ({registry.origin(name)}): its factory returned "
            f"{type(source).__name__}, which has no get_credentials()",
            key="source",
        )
    return source
