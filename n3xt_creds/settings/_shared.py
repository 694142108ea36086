"""The ``[*.shared_cache]`` table: which shared token cache, if any, and building it.

``backend`` is ``none`` (default), ``file`` or ``redis``; ``directory`` is the file
cache's home (empty: the per-user runtime directory); ``url_var`` names the
environment variable holding the Redis URL; ``timeout`` bounds each Redis operation.
The URL itself is never read from a settings file: it may carry a password.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from .._environ import REDIS_URL
from ..errors import ConfigError
from ..sources.options import SourceOptions

__all__ = ["BACKENDS", "SHARED_CACHE_DEFAULTS", "build_shared_cache", "validate_shared_cache"]

BACKENDS = ("none", "file", "redis")
SHARED_CACHE_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {"backend": "none", "directory": "", "url_var": REDIS_URL, "timeout": 0.05}
)
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _options(
    table: object,
    *,
    path: str,
    env: str,
    origins: Mapping[str, str],
    environ: Mapping[str, str] | None,
    where: str | None,
) -> SourceOptions:
    return SourceOptions(
        table if isinstance(table, dict) else None,
        prefix="shared_cache",
        path=path,
        env=env,
        origins=origins,
        environ=environ,
        where=where,
    )


def validate_shared_cache(
    table: object,
    *,
    path: str,
    env: str,
    origins: Mapping[str, str],
    environ: Mapping[str, str] | None,
    where: str | None = None,
) -> Mapping[str, Any]:
    """The checked table, defaults filled in; a ConfigError names the key and the file."""
    if isinstance(table, dict) and table.get("directory") == "":
        # `directory = ""`, as in the documented template: the default directory.
        table = {k: v for k, v in table.items() if k != "directory"}
    options = _options(table, path=path, env=env, origins=origins, environ=environ, where=where)
    if table is not None and not isinstance(table, dict):
        raise ConfigError(
            f"{options.where}: `shared_cache` must be a table, like [default.shared_cache] "
            'with backend = "file"',
            key="shared_cache",
            path=path,
            env=env,
        )
    if "url" in options:
        raise options.error(
            "url",
            "is not read from a settings file: a Redis URL may carry a password. Put it in "
            f"the environment variable named by `shared_cache.url_var` (default {REDIS_URL})",
        )
    backend = options.get_str("backend", default="none", choices=BACKENDS)
    directory = options.get_str("directory", default="")
    url_var = options.get_str("url_var", default=REDIS_URL)
    if not _VARIABLE_NAME.fullmatch(url_var):
        raise options.error(
            "url_var", f"must be an environment variable name like REDIS_URL, got {url_var!r}"
        )
    timeout = options.get_float("timeout", default=0.05, positive=True)
    if timeout > 10:
        raise options.error("timeout", f"must be at most 10 seconds; got {timeout}")
    options.finish()
    return MappingProxyType(
        {"backend": backend, "directory": directory, "url_var": url_var, "timeout": timeout}
    )


def build_shared_cache(
    table: Mapping[str, Any],
    *,
    path: str,
    env: str,
    origins: Mapping[str, str],
    environ: Mapping[str, str] | None,
    where: str | None = None,
) -> object | None:
    """The FileTokenCache or RedisTokenCache the table selects (``None`` for ``none``)."""
    backend = table["backend"]
    if backend == "none":
        return None
    options = _options(
        dict(table), path=path, env=env, origins=origins, environ=environ, where=where
    )
    if backend == "file":
        from .._core.shared.file import FileTokenCache  # noqa: PLC0415 - only when chosen

        return options.build(FileTokenCache, directory=table["directory"] or None)
    from .._core.shared.redis import RedisTokenCache  # noqa: PLC0415 - only when chosen

    return options.build(
        RedisTokenCache,
        url_var=table["url_var"],
        timeout=table["timeout"],
        environ=options.environ,
    )
