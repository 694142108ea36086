"""Done-when of issue 13: the complete app of docs/dynaconf.md, deployed three ways.

The two files of the page (``settings.toml`` and ``app.py``) are written as they are
printed, and the app runs in a fresh interpreter with a real Dynaconf object against the
N3XT emulator: in development with the env source, in production (``ENV_FOR_DYNACONF``)
with a real OpenBao server and AppRole login, then on AWS (one more variable) with moto's
Secrets Manager. Only environment variables change between the runs.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[2] / "docs" / "dynaconf.md"
FILE_BLOCK = re.compile(r"<!-- file: (\S+) -->\n```\w+\n(.*?)```", re.DOTALL)
# Variables of the developer's shell that would change what the app reads.
_FOREIGN = ("N3XT_", "MYAPP_", "ENV_FOR_DYNACONF", "VAULT_", "AWS_", "DYNACONF_")


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    files = dict(FILE_BLOCK.findall(PAGE.read_text(encoding="utf-8")))
    assert set(files) == {"settings.toml", "app.py"}, "docs/dynaconf.md lost a file block"
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


def run_app(app_dir: Path, variables: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN)}
    env.update(variables)
    return subprocess.run(
        [sys.executable, "app.py"],
        cwd=app_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _emulator_variables(emulator) -> dict[str, str]:
    """What a developer's machine has instead of the emulator on port 8400."""
    return {
        "MYAPP_API_BASE_URL": emulator.api_base_url,
        "MYAPP_N3XT__TOKEN_URL": emulator.token_url(),
    }


@pytest.mark.vault
@pytest.mark.aws
def test_one_dynaconf_app_goes_env_then_vault_then_aws(app_dir, n3xt_emulator, vault, moto_url):
    import boto3

    base = _emulator_variables(n3xt_emulator)

    # development: the env source, the pair the emulator handed out
    dev = n3xt_emulator.add_client()
    result = run_app(
        app_dir,
        {
            **base,
            "N3XT_CLIENT_ID": dev.client_id,
            "N3XT_CLIENT_SECRET": dev.client_secret.get_secret_value(),
        },
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"development: N3XT sees client {dev.client_id}"

    # production: ENV_FOR_DYNACONF alone switches to Vault (AppRole, as in the page)
    prod = n3xt_emulator.add_client()
    path = vault.new_path()
    vault.put(
        path, {"client_id": prod.client_id, "client_secret": prod.client_secret.get_secret_value()}
    )
    role_id, secret_id = vault.approle("n3xt")
    result = run_app(
        app_dir,
        {
            **base,
            "ENV_FOR_DYNACONF": "production",
            "MYAPP_N3XT__SOURCES__VAULT__PATH": path,
            "VAULT_ADDR": vault.url,
            "VAULT_ROLE_ID": role_id,
            "VAULT_SECRET_ID": secret_id,
        },
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"production: N3XT sees client {prod.client_id}"

    # AWS: the same production environment, one variable in the app's own prefix
    on_aws = n3xt_emulator.add_client()
    secret_name = f"n3xt/dynaconf-app-{on_aws.client_id[-8:]}"
    boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    ).client("secretsmanager", endpoint_url=moto_url).create_secret(
        Name=secret_name,
        SecretString=json.dumps(
            {
                "client_id": on_aws.client_id,
                "client_secret": on_aws.client_secret.get_secret_value(),
            }
        ),
    )
    result = run_app(
        app_dir,
        {
            **base,
            "ENV_FOR_DYNACONF": "production",
            "MYAPP_N3XT__SOURCE": "aws",
            "MYAPP_N3XT__SOURCES__AWS__SECRET_ID": secret_name,
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": moto_url,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_CONFIG_FILE": str(app_dir / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(app_dir / "no-aws-credentials"),
        },
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"production: N3XT sees client {on_aws.client_id}"

    counted = n3xt_emulator.counters.api_calls
    assert counted == {"ok": 3}
    for pair in (dev, prod, on_aws):
        assert pair.client_secret.get_secret_value() not in result.stdout + result.stderr
