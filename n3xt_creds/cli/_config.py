"""``n3xt-creds config``: every effective value, defaults included, and where it came from.

Top-level keys come from the validated settings. For each selected source the factory
runs dry (:class:`~n3xt_creds.sources.options.SourceOptions` with ``dry_run``): every key
it reads is listed with its value, or with the variable its source falls back to
(``VAULT_ADDR``, ``AWS_ENDPOINT_URL_SECRETS_MANAGER``...), or with its built-in default.
Secret-looking keys are redacted (they are refused by validation anyway).
"""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Mapping
from typing import Any

from ..settings import Settings, SourceRegistry
from ..sources.options import is_secret_key
from ._exit import EXIT_OK
from ._load import load

__all__ = ["effective_rows", "run_config"]

#: Variables a built-in source reads when its key is unset, in the order it reads them.
FALLBACKS: Mapping[tuple[str, str], tuple[str, ...]] = {
    ("vault", "url"): ("VAULT_ADDR",),
    ("vault", "namespace"): ("VAULT_NAMESPACE",),
    ("vault", "ca_cert"): ("VAULT_CACERT",),
    ("vault", "client_cert"): ("VAULT_CLIENT_CERT",),
    ("vault", "client_key"): ("VAULT_CLIENT_KEY",),
    ("aws", "endpoint_url"): ("AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL"),
    ("aws", "region_name"): ("AWS_DEFAULT_REGION", "AWS_REGION"),
    ("aws", "profile_name"): ("AWS_PROFILE",),
}
_BUILT_IN = "built-in default"


def effective_rows(
    settings: Settings, registry: SourceRegistry, environ: Mapping[str, str]
) -> list[tuple[str, Any, str]]:
    """``(dotted key, value, origin)`` for every effective value, defaults included."""
    rows = {key: (key, value, origin) for key, value, origin in settings.effective()}
    for name in settings.source_names:
        options = settings.options_for(name, dry_run=True)
        # A factory that stops early (a plugin's own check) is shown as far as it got.
        with contextlib.suppress(Exception):
            registry.factory(name)(options)
        for key, (read, given) in sorted(options.reads.items()):
            dotted = f"sources.{name}.{key}"
            if dotted not in rows:
                shown, origin = _shown(
                    name, key, read, given=given, settings=settings, environ=environ
                )
                rows[dotted] = (dotted, shown, origin)
    top = [rows.pop(key) for key, _, _ in settings.effective() if not key.startswith("sources.")]
    return top + [rows[key] for key in sorted(rows)]


def _shown(
    name: str,
    key: str,
    value: Any,
    *,
    given: bool,
    settings: Settings,
    environ: Mapping[str, str],
) -> tuple[Any, str]:
    origin = settings.origin(f"sources.{name}.{key}") if given else _BUILT_IN
    if not given:
        for variable in FALLBACKS.get((name, key), ()):
            if environ.get(variable):
                value, origin = environ[variable], f"environment variable {variable}"
                break
    if is_secret_key(key, source=name) and value is not None:
        value = "<redacted>"
    return value, origin


def run_config(args: argparse.Namespace) -> int:
    """Print the effective settings (text, or ``--json``)."""
    settings, registry, environ = load(args)
    rows = effective_rows(settings, registry, environ)
    if args.json:
        document: dict[str, Any] = {
            "settings_file": str(settings.path) if settings.path else None,
            "settings_file_reason": settings.path_reason,
            "settings": settings.where,
            "env": settings.env,
            "env_reason": settings.env_reason,
            "environments": list(settings.environments),
            "values": {key: {"value": value, "origin": origin} for key, value, origin in rows},
        }
        print(json.dumps(document, indent=2))
        return EXIT_OK
    print(f"settings file: {settings.path or '(none)'}  ({settings.path_reason})")
    print(
        f"environment:   {settings.env}  ({settings.env_reason}); "
        f"file has: {', '.join(settings.environments) or '(no tables)'}"
    )
    print(f"reading:       {settings.where}")
    width = max(len(key) for key, _, _ in rows)
    for key, value, origin in rows:
        print(f"  {key:<{width}} = {json.dumps(value)}  # {origin}")
    return EXIT_OK
