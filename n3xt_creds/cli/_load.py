"""The settings every command reads: ``--settings``/``--env``/``--section``, or ``--dynaconf``."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError
from ..settings import Settings, SourceRegistry, load_dynaconf, load_settings

__all__ = ["load", "load_dynaconf_object"]


def load(args: argparse.Namespace) -> tuple[Settings, SourceRegistry, Mapping[str, str]]:
    """Validated settings for the command's flags, the registry and the environment used."""
    registry = SourceRegistry()
    environ = os.environ
    target = getattr(args, "dynaconf", None)
    if target:
        if args.settings or args.env:
            raise ConfigError(
                "--dynaconf reads the application's own Dynaconf object: its files and "
                "environment (ENV_FOR_DYNACONF) are its own; leave out --settings and --env",
                key="dynaconf",
            )
        settings = load_dynaconf(
            load_dynaconf_object(target),
            args.section or "n3xt",
            environ=environ,
            registry=registry,
        )
        return settings, registry, environ
    settings = load_settings(
        args.settings,
        args.env,
        section=getattr(args, "section", None),
        environ=environ,
        registry=registry,
    )
    return settings, registry, environ


def load_dynaconf_object(target: str) -> Any:
    """The object named ``module:attribute`` (like ``uvicorn app:app``), importing the
    module from the working directory the way the application itself would be run."""
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise ConfigError(
            f"--dynaconf takes MODULE:ATTRIBUTE, like myapp.config:settings; got {target!r}",
            key="dynaconf",
        )
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"--dynaconf {target}: cannot import {module_name!r} ({type(exc).__name__}: {exc}); "
            "run from the directory the application runs from",
            key="dynaconf",
        ) from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ConfigError(
            f"--dynaconf {target}: module {module_name!r} has no attribute {attribute!r}",
            key="dynaconf",
        ) from None
