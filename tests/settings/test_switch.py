"""The deployment-time switch, end to end: the same app, N3XT_CREDS_SOURCE varies.

Each row runs ``switch_app.py`` in a fresh interpreter (as a deployment would), with
credentials placed only where that row's source reads them, and checks that the
emulator's API saw the client that source holds. Vault and AWS rows: see
test_switch_backends.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

APP = Path(__file__).parent / "switch_app.py"
PLUGIN_DIR = Path(__file__).parent / "plugin_pkg"

SETTINGS = """
[default]
token_url = "{token_url}"
source = "env"
chain = ["env", "file"]

[default.sources.env]
client_id_var = "SWITCH_CLIENT_ID"
client_secret_var = "SWITCH_CLIENT_SECRET"

[default.sources.file]
directory = "{secrets_dir}"
"""


def run_app(
    settings: Path, api_url: str, extra_env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("N3XT_", "SWITCH_"))}
    env.update(extra_env, N3XT_CREDS_SETTINGS=str(settings))
    return subprocess.run(
        [sys.executable, str(APP), api_url],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def deployment(n3xt_emulator, tmp_path):
    secrets_dir = tmp_path / "secrets"
    json_path = tmp_path / "creds.json"
    settings = tmp_path / "settings.toml"
    settings.write_text(
        SETTINGS.format(token_url=n3xt_emulator.token_url(), secrets_dir=secrets_dir)
    )
    return settings, secrets_dir, json_path


def _in_env(creds):
    return {
        "SWITCH_CLIENT_ID": creds.client_id,
        "SWITCH_CLIENT_SECRET": creds.client_secret.get_secret_value(),
    }


def _in_files(creds, directory: Path) -> None:
    directory.mkdir(exist_ok=True)
    (directory / "client_id").write_text(creds.client_id + "\n")
    (directory / "client_secret").write_text(creds.client_secret.get_secret_value() + "\n")


@pytest.mark.parametrize("backend", ["env", "file", "chain", "jsonfile"])
def test_same_app_switches_backend_by_variable(n3xt_emulator, deployment, backend):
    settings, secrets_dir, json_path = deployment
    creds = n3xt_emulator.add_client()
    extra = {"N3XT_CREDS_SOURCE": backend}
    if backend == "env":
        extra.update(_in_env(creds))
    elif backend in {"file", "chain"}:
        # chain = [env, file]: env is empty here, so the chain must fall through to file.
        _in_files(creds, secrets_dir)
    else:
        json_path.write_text(
            json.dumps(
                {
                    "client_id": creds.client_id,
                    "client_secret": creds.client_secret.get_secret_value(),
                }
            )
        )
        # The plugin's table comes from a nested variable: the file does not mention it.
        extra["N3XT_CREDS_SOURCES__JSONFILE__PATH"] = str(json_path)
        extra["PYTHONPATH"] = str(PLUGIN_DIR)
    result = run_app(settings, n3xt_emulator.api_url(), extra)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == creds.client_id
    assert n3xt_emulator.counters.token_requests == {"success": 1}
    assert creds.client_secret.get_secret_value() not in result.stdout + result.stderr


def test_switching_to_a_backend_without_credentials_fails_clearly(n3xt_emulator, deployment):
    settings, secrets_dir, _ = deployment
    creds = n3xt_emulator.add_client()
    # Credentials are in the environment, but the deployment says "file".
    result = run_app(
        settings, n3xt_emulator.api_url(), {"N3XT_CREDS_SOURCE": "file", **_in_env(creds)}
    )
    assert result.returncode != 0
    assert "CredentialsNotFoundError" in result.stderr
    assert f"file: directory {secrets_dir} does not exist" in result.stderr
    assert creds.client_secret.get_secret_value() not in result.stderr
