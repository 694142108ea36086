"""The settings every command reads: ``--settings``, ``--env`` and ``--section``."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping

from ..settings import Settings, SourceRegistry, load_settings

__all__ = ["load"]


def load(args: argparse.Namespace) -> tuple[Settings, SourceRegistry, Mapping[str, str]]:
    """Validated settings for the command's flags, the registry and the environment used."""
    registry = SourceRegistry()
    environ = os.environ
    settings = load_settings(
        args.settings,
        args.env,
        section=getattr(args, "section", None),
        environ=environ,
        registry=registry,
    )
    return settings, registry, environ
