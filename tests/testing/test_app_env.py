"""``n3xt_app_env`` and ``emulator.environ()``: an unchanged app, pointed at the emulator."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

import n3xt_creds

APP = "import httpx, n3xt_creds, sys\nauth = n3xt_creds.from_settings()\n" + (
    "print(httpx.get(sys.argv[1], auth=auth).json()['client_id'])\n"
)


def test_fixture_overrides_the_developers_shell(monkeypatch, tmp_path, request):
    # What a developer's shell may hold when they run the tests.
    monkeypatch.setenv("N3XT_CREDS_ENV", "production")
    monkeypatch.setenv("N3XT_CREDS_SETTINGS", str(tmp_path / "deploy" / "settings.toml"))
    monkeypatch.setenv("N3XT_CREDS_SOURCE", "vault")
    monkeypatch.setenv("N3XT_CREDS_SOURCES__VAULT__PATH", "prod/n3xt")
    monkeypatch.chdir(tmp_path)  # no settings.toml here: the variables are enough
    env = request.getfixturevalue("n3xt_app_env")
    emulator = request.getfixturevalue("n3xt_emulator")
    for name in ("N3XT_CREDS_ENV", "N3XT_CREDS_SETTINGS", "N3XT_CREDS_SOURCES__VAULT__PATH"):
        assert name not in os.environ
    assert os.environ["N3XT_CREDS_SOURCE"] == "env"
    with httpx.Client(auth=n3xt_creds.from_settings()) as client:
        answer = client.get(emulator.api_base_url + "/v1/payments")
    assert answer.json()["client_id"] == env["N3XT_CLIENT_ID"]


def test_environ_for_a_subprocess(n3xt_emulator, tmp_path):
    creds = n3xt_emulator.add_client()
    variables = n3xt_emulator.environ(creds)
    assert variables["N3XT_CLIENT_ID"] == creds.client_id
    assert variables["N3XT_CREDS_TOKEN_URL"] == n3xt_emulator.token_url()
    env = {k: v for k, v in os.environ.items() if not k.startswith("N3XT_")}
    result = subprocess.run(
        [sys.executable, "-c", APP, n3xt_emulator.api_url("/v1/x")],
        env={**env, **variables},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == creds.client_id


def test_api_base_url_and_counters_url(n3xt_emulator):
    assert n3xt_emulator.api_base_url == f"{n3xt_emulator.url}/api"
    assert n3xt_emulator.api_url("/v1/ping") == n3xt_emulator.api_base_url + "/v1/ping"
    counters = httpx.get(n3xt_emulator.counters_url).json()
    assert counters == {
        "token_requests": {},
        "token_requests_total": 0,
        "api_calls": {},
        "api_calls_total": 0,
        "max_in_flight": 0,
        "in_flight": 0,
    }


@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_counters_are_read_only(n3xt_emulator, method):
    assert httpx.request(method, n3xt_emulator.counters_url).status_code == 404
