"""The switch's vault and aws rows: the same app, N3XT_CREDS_SOURCE=vault / aws.

Real servers on 127.0.0.1: the session's OpenBao dev server and moto's Secrets Manager
(tests/servers/, shared with the source tests); the app runs in a fresh interpreter
with only the variables a deployment would set.
"""

from __future__ import annotations

import json

import httpx
import pytest

from .test_switch import deployment, run_app

__all__ = ["deployment"]  # the fixture, re-used from test_switch


@pytest.mark.vault
def test_switch_to_vault(n3xt_emulator, deployment, vault):
    url, root_token = vault.url, vault.root_token
    settings, _, _ = deployment
    creds = n3xt_emulator.add_client()
    pair = {"client_id": creds.client_id, "client_secret": creds.client_secret.get_secret_value()}
    answer = httpx.post(
        f"{url}/v1/secret/data/n3xt/switch",
        headers={"X-Vault-Token": root_token},
        json={"data": pair},
    )
    assert answer.status_code == 200, answer.text
    result = run_app(
        settings,
        n3xt_emulator.api_url(),
        {
            "N3XT_CREDS_SOURCE": "vault",
            "N3XT_CREDS_SOURCES__VAULT__PATH": "n3xt/switch",
            "VAULT_ADDR": url,
            "VAULT_TOKEN": root_token,
        },
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == creds.client_id
    assert pair["client_secret"] not in result.stdout + result.stderr


@pytest.mark.aws
def test_switch_to_aws(n3xt_emulator, deployment, moto_url, tmp_path):
    import boto3

    settings, _, _ = deployment
    creds = n3xt_emulator.add_client()
    pair = {"client_id": creds.client_id, "client_secret": creds.client_secret.get_secret_value()}
    aws = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
    }
    client = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    ).client("secretsmanager", endpoint_url=moto_url)
    client.create_secret(Name="prod/n3xt/switch", SecretString=json.dumps(pair))
    result = run_app(
        settings,
        n3xt_emulator.api_url(),
        {
            **aws,
            "N3XT_CREDS_SOURCE": "aws",
            "N3XT_CREDS_SOURCES__AWS__SECRET_ID": "prod/n3xt/switch",
            "N3XT_CREDS_SOURCES__AWS__REGION_NAME": "us-east-1",
            "N3XT_CREDS_SOURCES__AWS__ENDPOINT_URL": moto_url,
        },
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == creds.client_id
    assert pair["client_secret"] not in result.stdout + result.stderr
