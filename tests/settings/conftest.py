"""Helpers for settings tests: write a settings file, load it with an injected environ."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

BASE = """
[default]
token_url = "https://authn.alpha.n3xt.io/v1/public/p-1/oauth2/token"
source = "env"
chain = ["env", "file"]

[default.sources.env]
client_id_var = "APP_ID"
client_secret_var = "APP_SECRET"

[development]
refresh_margin = 120

[production]
source = "file"
timeout = 3

[production.sources.file]
directory = "/run/secrets/n3xt"
"""


@pytest.fixture
def write_settings(tmp_path: Path) -> Callable[[str], Path]:
    """Write ``text`` (dedented) as ``tmp_path/settings.toml`` and return its path."""

    def write(text: str = BASE, name: str = "settings.toml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write
