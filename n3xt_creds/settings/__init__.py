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
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ..authenticator import Authenticator
from ..errors import ConfigError, CredentialsNotFoundError, SourceError
from ..sources.chain import ChainSource
from ._load import read_settings
from ._registry import ENTRY_POINT_GROUP, SourceRegistry
from ._schema import Settings, validate
from ._shared import build_shared_cache

__all__ = [
    "ENTRY_POINT_GROUP",
    "Settings",
    "SourceRegistry",
    "build_authenticator",
    "build_source",
    "from_settings",
    "load_settings",
]


def load_settings(
    path: str | os.PathLike[str] | None = None,
    env: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    registry: SourceRegistry | None = None,
) -> Settings:
    """Read and validate the settings (no network); see the module docstring for the rules.

    ``environ`` replaces :data:`os.environ` for choosing the file and environment, for
    ``N3XT_CREDS_*`` overrides, and for sources that read variables (EnvSource).
    ``registry`` replaces the discovered source registry (built-ins + entry points).
    """
    registry = registry if registry is not None else SourceRegistry()
    raw = read_settings(path, env, os.environ if environ is None else environ)
    return validate(raw, registry, environ)


def build_source(settings: Settings, *, registry: SourceRegistry | None = None) -> Any:
    """Build the credential source the settings select (a ChainSource for ``chain``).

    Each source's factory validates its own ``[*.sources.<name>]`` table; keys it did
    not read are refused afterwards, so a typo in a plugin's table is caught too.
    """
    registry = registry if registry is not None else SourceRegistry()
    sources = [_build_one(settings, name, registry) for name in settings.source_names]
    if settings.source == "chain":
        return ChainSource(sources)
    return sources[0]


def build_authenticator(settings: Settings, source: Any) -> Authenticator:
    """The Authenticator for ``source`` with the settings' token_url, margins, hosts and
    shared cache."""
    shared_cache = build_shared_cache(
        settings.shared_cache,
        path=str(settings.path),
        env=settings.env,
        origins=settings.origins,
        environ=settings.environ,
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
            f"{settings.where}: {exc}", key=exc.key, path=str(settings.path), env=settings.env
        ) from None


def from_settings(
    path: str | os.PathLike[str] | None = None,
    env: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Authenticator:
    """Build an :class:`~n3xt_creds.Authenticator` from ``settings.toml`` and the environment.

    ``path`` and ``env`` choose the file and environment (defaults: ``N3XT_CREDS_SETTINGS``
    or ``./settings.toml``; ``N3XT_CREDS_ENV`` or ``development``). ``environ`` replaces
    :data:`os.environ` (tests). Raises :class:`~n3xt_creds.ConfigError` for any problem
    with the settings; no network call is made until the first token is needed.
    """
    registry = SourceRegistry()
    settings = load_settings(path, env, environ=environ, registry=registry)
    return build_authenticator(settings, build_source(settings, registry=registry))


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
            path=str(settings.path),
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
