"""Helpers for CLI tests: a settings file pointed at the session emulator, and runners.

``run_cli`` starts the real console script in a fresh process (what users run);
``call_cli`` runs ``main()`` in-process for the many cheap cases. Both scrub N3XT_*
variables from the environment so the machine's own settings never leak in.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from n3xt_creds.cli import main

CANARY = "canary-SECRET-cli-7f3a2c91"
SCRIPT = Path(sys.executable).parent / "n3xt-creds"

SETTINGS = """
[default]
token_url = "https://authn.alpha.n3xt.io/v1/public/p-1/oauth2/token"
source = "env"

[default.sources.env]
client_id_var = "CLI_CLIENT_ID"
client_secret_var = "CLI_CLIENT_SECRET"

[development]
timeout = 5

[production]
source = "file"

[production.sources.file]
directory = "{secrets_dir}"
"""


@pytest.fixture
def settings_file(tmp_path: Path) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(SETTINGS.format(secrets_dir=tmp_path / "secrets"))
    return path


def clean_environ(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("N3XT_", "CLI_"))}
    env.update(extra)
    return env


@pytest.fixture
def run_cli(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(SCRIPT), *args],
            check=False,
            env=clean_environ(env or {}),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )

    return run


@pytest.fixture
def call_cli(monkeypatch, capsys, tmp_path):
    def call(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
        for name in list(os.environ):
            if name.startswith(("N3XT_", "CLI_")):
                monkeypatch.delenv(name)
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        monkeypatch.chdir(tmp_path)
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return call


@pytest.fixture
def client_env(n3xt_emulator) -> dict[str, str]:
    """A client the emulator knows (its secret is the canary) and the emulator's token URL."""
    n3xt_emulator.add_client("cli-client", CANARY)
    return {
        "CLI_CLIENT_ID": "cli-client",
        "CLI_CLIENT_SECRET": CANARY,
        "N3XT_CREDS_TOKEN_URL": n3xt_emulator.token_url(),
    }
