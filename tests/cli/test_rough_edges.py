"""The CLI items of issue 13: --version, --section, one error line from `token`,
`config` with every effective value, a closed stdout pipe, `check --all-envs`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import n3xt_creds

from .conftest import CANARY, SCRIPT, clean_environ


def test_version(run_cli, call_cli, settings_file, client_env):
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"n3xt-creds {n3xt_creds.__version__}"
    code, out, _ = call_cli("check", "--settings", str(settings_file), env=client_env)
    assert code == 0
    assert out.splitlines()[0] == f"n3xt-creds check (n3xt-creds {n3xt_creds.__version__})"
    code, out, _ = call_cli("check", "--json", "--settings", str(settings_file), env=client_env)
    assert json.loads(out)["version"] == n3xt_creds.__version__


def test_token_failure_is_one_line(run_cli, settings_file, client_env, n3xt_emulator):
    n3xt_emulator.inject_fault(n3xt_creds.testing.Fault.SERVER_ERROR, count=50)
    result = run_cli("token", "--settings", str(settings_file), env=client_env)
    assert result.returncode == 5
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("n3xt-creds: TokenRequestError: ")
    assert CANARY not in result.stderr


def test_token_with_a_missing_file_is_one_line_too(run_cli, tmp_path):
    result = run_cli("token", "--settings", str(tmp_path / "nope.toml"))
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert "does not exist" in line and line.endswith("(details: n3xt-creds check)")


def test_config_shows_defaults_and_fallback_variables(call_cli, settings_file):
    env = {
        "N3XT_CREDS_SOURCE": "vault",
        "VAULT_ADDR": "http://127.0.0.1:8200",
    }
    code, out, _ = call_cli("config", "--json", "--settings", str(settings_file), env=env)
    assert code == 0
    values = json.loads(out)["values"]
    assert values["sources.vault.url"] == {
        "value": "http://127.0.0.1:8200",
        "origin": "environment variable VAULT_ADDR",
    }
    assert values["sources.vault.path"] == {"value": "n3xt/api", "origin": "built-in default"}
    assert values["sources.vault.kv_version"]["value"] == 2
    assert values["refresh_margin"] == {"value": 300.0, "origin": "built-in default"}
    env = {
        "N3XT_CREDS_SOURCE": "aws",
        "N3XT_CREDS_SOURCES__AWS__SECRET_ID": "n3xt/api",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://127.0.0.1:5000",
    }
    code, out, _ = call_cli("config", "--json", "--settings", str(settings_file), env=env)
    values = json.loads(out)["values"]
    assert values["sources.aws.endpoint_url"] == {
        "value": "http://127.0.0.1:5000",
        "origin": "environment variable AWS_ENDPOINT_URL_SECRETS_MANAGER",
    }
    assert values["sources.aws.version_stage"]["origin"] == "built-in default"


def test_closed_stdout_pipe_ends_quietly(settings_file):
    # `n3xt-creds config | head -c 10`: the reader leaves before the writer is done.
    process = subprocess.Popen(
        [str(SCRIPT), "config", "--settings", str(settings_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_environ({}),
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.read(10)
    process.stdout.close()
    err = process.stderr.read()
    process.stderr.close()
    code = process.wait(timeout=30)
    assert err == b"", err
    assert code in (0, 141)  # 0 when everything fit in the pipe before it closed


def test_stdout_closed_before_any_output_ends_quietly_with_141(settings_file):
    # The reader is gone before we write a byte (`n3xt-creds config | true`): every write
    # fails, deterministically, whatever the pipe's buffer size.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [str(SCRIPT), "config", "--settings", str(settings_file)],
            stdout=write_end,
            stderr=subprocess.PIPE,
            env=clean_environ({}),
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert result.stderr == b"", result.stderr
    assert result.returncode == 141


def test_section_flag_on_every_command(call_cli, tmp_path, client_env):
    shared = tmp_path / "app.toml"
    shared.write_text(
        "[default]\napp_key = 1\n[default.n3xt]\n"
        f'token_url = "{client_env["N3XT_CREDS_TOKEN_URL"]}"\n'
        '[default.n3xt.sources.env]\nclient_id_var = "CLI_CLIENT_ID"\n'
        'client_secret_var = "CLI_CLIENT_SECRET"\n'
    )
    env = {k: v for k, v in client_env.items() if k != "N3XT_CREDS_TOKEN_URL"}
    for command in ("token", "check", "config"):
        code, out, err = call_cli(command, "--settings", str(shared), "--section", "n3xt", env=env)
        assert code == 0, (command, out, err)
    code, _, err = call_cli("token", "--settings", str(shared), env=env)
    assert code == 2 and "`app_key` is not a known setting" in err


def test_check_all_envs_json(call_cli, settings_file):
    code, out, _ = call_cli("check", "--all-envs", "--json", "--settings", str(settings_file))
    assert code == 0
    report = json.loads(out)
    assert set(report["environments"]) == {"default", "development", "production"}
    assert all(item["ok"] for item in report["environments"].values())


DYNACONF_APP = """
from pathlib import Path

from dynaconf import Dynaconf

settings = Dynaconf(
    root_path=Path(__file__).parent,
    settings_files=["settings.toml"],
    environments=True,
    envvar_prefix="MYAPP",
)
"""
DYNACONF_SETTINGS = """
[default]
page_size = 50
[default.n3xt]
token_url = "{token_url}"
[default.n3xt.sources.env]
client_id_var = "CLI_CLIENT_ID"
client_secret_var = "CLI_CLIENT_SECRET"
[production.n3xt]
dynaconf_merge = true
timeout = 4
"""


def test_dynaconf_flag_reads_the_apps_object(run_cli, tmp_path, client_env):
    (tmp_path / "dynapp.py").write_text(DYNACONF_APP)
    (tmp_path / "settings.toml").write_text(
        DYNACONF_SETTINGS.format(token_url=client_env["N3XT_CREDS_TOKEN_URL"])
    )
    env = {k: v for k, v in client_env.items() if k != "N3XT_CREDS_TOKEN_URL"}
    env["ENV_FOR_DYNACONF"] = "production"
    result = run_cli("config", "--json", "--dynaconf", "dynapp:settings", env=env)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["settings"] == "settings.toml [production.n3xt]"
    assert document["values"]["timeout"] == {
        "value": 4.0,
        "origin": "settings.toml [production.n3xt]",
    }
    assert document["values"]["token_url"]["origin"] == "settings.toml [default.n3xt]"
    result = run_cli("check", "--dynaconf", "dynapp:settings", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert CANARY not in result.stdout + result.stderr
    result = run_cli("token", "--dynaconf", "dynapp:nope", env=env)
    assert result.returncode == 2
    assert "has no attribute 'nope'" in result.stderr


def test_an_import_error_below_our_checks_is_one_line(tmp_path, settings_file, client_env):
    # hvac is installed (the check passes) but one of its own imports is broken.
    code = (
        "import sys; sys.modules['hvac.adapters'] = None\n"
        "from n3xt_creds.cli import main\n"
        f"sys.exit(main(['token', '--settings', {str(settings_file)!r}]))\n"
    )
    env = clean_environ(
        {**client_env, "N3XT_CREDS_SOURCE": "vault", "VAULT_ADDR": "http://127.0.0.1:9"}
    )
    env["VAULT_TOKEN"] = "t"
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("n3xt-creds: ImportError: hvac.adapters cannot be imported")
