"""Vault selected from settings: N3XT_CREDS_SOURCE=vault, from_settings and `n3xt-creds check`."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import n3xt_creds
from n3xt_creds.sources.vault import VaultSource

pytestmark = pytest.mark.vault


@pytest.fixture
def settings_file(tmp_path, vault, n3xt_emulator):
    pair = n3xt_emulator.add_client()
    path = vault.new_path()
    vault.put(
        path, {"client_id": pair.client_id, "client_secret": pair.client_secret.get_secret_value()}
    )
    file = tmp_path / "settings.toml"
    file.write_text(
        textwrap.dedent(
            f"""\
            [default]
            token_url = "{n3xt_emulator.token_url()}"
            source = "env"

            [default.sources.vault]
            mount_point = "secret"
            path = "{path}"
            kv_version = 2
            auth_method = "token"

            [production]
            source = "env"  # N3XT_CREDS_SOURCE=vault overrides it at deploy time
            """
        )
    )
    return file, pair, path


def test_n3xt_creds_source_switches_to_vault(settings_file, vault) -> None:
    file, pair, _ = settings_file
    environ = {
        "N3XT_CREDS_SOURCE": "vault",
        "VAULT_ADDR": vault.url,
        "VAULT_TOKEN": vault.root_token,
    }
    with n3xt_creds.from_settings(file, env="production", environ=environ) as auth:
        assert isinstance(auth.source, VaultSource)
        assert auth.source.get_credentials().client_id == pair.client_id
        assert auth.get_token()
        auth.source.close()


def test_check_shows_address_auth_method_path_and_outcome(settings_file, vault) -> None:
    file, pair, path = settings_file
    env = {
        **os.environ,
        "N3XT_CREDS_SOURCE": "vault",
        "VAULT_ADDR": vault.url,
        "VAULT_TOKEN": vault.root_token,
    }
    cli = [
        sys.executable,
        "-m",
        "n3xt_creds.cli",
        "check",
        "--settings",
        str(file),
        "--env",
        "production",
    ]
    done = subprocess.run(cli, check=False, capture_output=True, text=True, env=env, timeout=60)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert vault.url in output
    assert "token (from VAULT_TOKEN" in output
    assert f"secret/{path}" in output
    assert vault.root_token not in output
    assert pair.client_secret.get_secret_value() not in output

    # Denied: the check fails at the credentials step and says why, still secret-free.
    env["VAULT_TOKEN"] = limited = vault.limited_token()
    done = subprocess.run(cli, check=False, capture_output=True, text=True, env=env, timeout=60)
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "permission denied (403)" in output
    assert limited not in output
