"""Every n3xt-creds command, its exit code per failure class, --json, and no secret in output.

Subprocess tests run the installed console script; the rest call ``main()`` in-process.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time

import pytest

from n3xt_creds.cli import build_parser

from .conftest import CANARY, SCRIPT, clean_environ


def assert_no_secret(*outputs: str) -> None:
    for output in outputs:
        assert CANARY not in output


# -- token ---------------------------------------------------------------------------------


def test_token_prints_only_the_raw_token(run_cli, settings_file, client_env, n3xt_emulator):
    result = run_cli("token", "--settings", str(settings_file), env=client_env)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert result.stdout == token + "\n"
    assert not token.lower().startswith("bearer")
    assert n3xt_emulator.revoke_token(token)  # it is the token the emulator issued
    assert_no_secret(result.stdout, result.stderr)


def test_token_config_error_exits_2_on_stderr(run_cli, settings_file, client_env):
    result = run_cli("token", "--settings", str(settings_file), "--env", "prod", env=client_env)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "n3xt-creds: ConfigError: " in result.stderr
    assert (
        "environment 'prod' (given by --env or the env argument) is not in the file"
        in result.stderr
    )
    assert "Traceback" not in result.stderr


def test_token_exit_codes_per_failure_class(call_cli, settings_file, client_env, n3xt_emulator):
    base = ["token", "--settings", str(settings_file)]
    # 3: nothing where the source looks
    code, out, err = call_cli(
        *base, env={"N3XT_CREDS_TOKEN_URL": client_env["N3XT_CREDS_TOKEN_URL"]}
    )
    assert (code, out) == (3, "")
    assert (
        "CredentialsNotFoundError: env: neither CLI_CLIENT_ID nor CLI_CLIENT_SECRET is set" in err
    )
    # 4: the source is broken (half-configured)
    code, _, err = call_cli(*base, env={**client_env, "CLI_CLIENT_SECRET": ""})
    assert code == 4
    assert "SourceError: env: CLI_CLIENT_SECRET is set but empty" in err
    # 6: credentials rejected
    code, _, err = call_cli(*base, env={**client_env, "CLI_CLIENT_SECRET": "wrong"})
    assert code == 6
    assert "InvalidClientError" in err
    # 5: the endpoint answered with a non-retryable error (404 on a wrong path)
    wrong = n3xt_emulator.url + "/v1/nope"
    code, _, err = call_cli(*base, env={**client_env, "N3XT_CREDS_TOKEN_URL": wrong})
    assert code == 5
    assert "TokenRequestError" in err
    assert_no_secret(err)


# -- check ---------------------------------------------------------------------------------


def test_check_success_text(run_cli, settings_file, client_env):
    result = run_cli("check", "--settings", str(settings_file), env=client_env)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert f"settings file: {settings_file}  (given by --settings or the path argument)" in out
    assert "environment:   development  (default: no env given and N3XT_CREDS_ENV unset)" in out
    assert f"source:        env  (from {settings_file} [default])" in out
    for step in ("settings", "source", "credentials", "token"):
        assert f"[ok  ] {step}" in out
    assert "token_url http://127.0.0.1" in out
    assert "(from environment variable N3XT_CREDS_TOKEN_URL)" in out
    assert "client_id 'cli-client', client_secret fingerprint" in out
    assert "expires in 3600 s, refreshed after 3300 s" in out
    assert out.rstrip().endswith("OK")
    assert_no_secret(result.stdout, result.stderr)


def test_check_failure_json_names_the_missing_files(run_cli, settings_file, client_env, tmp_path):
    result = run_cli(
        "check", "--settings", str(settings_file), "--env", "production", "--json", env=client_env
    )
    assert result.returncode == 3
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert report["exit_code"] == 3
    assert report["env"] == "production"
    assert report["source"] == "file"
    assert [s["name"] for s in report["steps"]] == ["settings", "source", "credentials"]
    failed = report["steps"][-1]
    assert failed["ok"] is False
    assert failed["error_type"] == "CredentialsNotFoundError"
    assert f"file: directory {tmp_path / 'secrets'} does not exist" in failed["error"]
    assert failed["hint"] == (
        f"provide the credentials at: {tmp_path / 'secrets' / 'client_id'}, "
        f"{tmp_path / 'secrets' / 'client_secret'}"
    )
    assert_no_secret(result.stdout, result.stderr)


def test_check_text_failures_give_hints(call_cli, settings_file, client_env, n3xt_emulator):
    code, out, _ = call_cli(
        "check", "--settings", str(settings_file), env={**client_env, "N3XT_CREDS_SORCE": "file"}
    )
    assert code == 2
    assert "[FAIL] settings" in out
    assert "did you mean `source`?" in out
    assert "hint: fix `sorce` in" in out
    code, out, _ = call_cli(
        "check", "--settings", str(settings_file), env={**client_env, "CLI_CLIENT_SECRET": "wrong"}
    )
    assert code == 6
    assert "[FAIL] token" in out
    assert "hint: N3XT rejected this client_id/secret pair" in out
    assert "request_id request-id-emu-" in out
    code, out, _ = call_cli(
        "check",
        "--settings",
        str(settings_file),
        "--json",
        env={**client_env, "N3XT_CREDS_TOKEN_URL": "http://127.0.0.1:9/t"},
    )
    assert code == 5
    assert json.loads(out)["steps"][-1]["error_type"] == "TokenRequestError"


def test_check_json_success_has_token_facts(call_cli, settings_file, client_env):
    code, out, _ = call_cli("check", "--settings", str(settings_file), "--json", env=client_env)
    assert code == 0
    report = json.loads(out)
    (token,) = [step["facts"] for step in report["steps"] if step["name"] == "token"]
    assert token["expires_in"] == 3600
    assert token["refresh_in"] == pytest.approx(3300, abs=5)
    assert len(token["token_fingerprint"]) == 8
    assert report["source_origin"] == f"{settings_file} [default]"
    assert_no_secret(out)


# -- config --------------------------------------------------------------------------------


def test_config_json_shows_values_and_origins(run_cli, settings_file, client_env):
    result = run_cli(
        "config",
        "--settings",
        str(settings_file),
        "--json",
        env={**client_env, "N3XT_CREDS_SOURCE": "file"},
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["env"] == "development"
    assert document["environments"] == ["default", "development", "production"]
    values = document["values"]
    assert values["source"] == {"value": "file", "origin": "environment variable N3XT_CREDS_SOURCE"}
    assert values["timeout"] == {"value": 5.0, "origin": f"{settings_file} [development]"}
    assert values["refresh_margin"] == {"value": 300.0, "origin": "built-in default"}
    assert values["sources.env.client_secret_var"]["value"] == "CLI_CLIENT_SECRET"
    assert_no_secret(result.stdout, result.stderr)


def test_config_text(call_cli, settings_file):
    code, out, _ = call_cli("config", "--settings", str(settings_file), "--env", "production")
    assert code == 0
    assert "environment:   production  (given by --env or the env argument)" in out
    assert re.search(
        rf'\n  source +=  ?"file"  # {re.escape(str(settings_file))} \[production\]\n', out
    )


# -- help ----------------------------------------------------------------------------------


def test_help_is_complete_with_examples(run_cli):
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("token", "check", "config", "emulator", "demo"):
        assert command in result.stdout
    assert "examples:" in result.stdout
    assert (
        "exit codes: 0 ok, 1 unexpected, 2 usage/settings, 3 no credentials found" in result.stdout
    )
    parser = build_parser()
    subcommands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name, sub in subcommands.items():
        text = sub.format_help()
        assert "--settings FILE" in text, name
        assert "--env NAME" in text, name
        assert "example" in text, name


def test_usage_error_exits_2(call_cli):
    with pytest.raises(SystemExit) as caught:
        call_cli("frobnicate")
    assert caught.value.code == 2


# -- emulator and demo ---------------------------------------------------------------------


def test_emulator_runs_until_interrupted(tmp_path):
    process = subprocess.Popen(
        [str(SCRIPT), "emulator", "--port", "0", "--expires-in", "60"],
        env=clean_environ({}),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        text = "".join(lines)
        assert re.search(r"\n  token_url: +http://127\.0\.0\.1:", text)
        assert "export N3XT_CLIENT_ID=" in text
        assert "export N3XT_CLIENT_SECRET=" in text
        assert "expires_in: 60 s" in text
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=30)
        assert process.returncode == 0
        assert "N3XT emulator stopped." in out
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_demo_runs_offline_from_the_repo_root(run_cli):
    from pathlib import Path

    repo_settings = Path(__file__).resolve().parents[2] / "settings.toml"
    result = run_cli("demo", "--settings", str(repo_settings))
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "Get a token" in out
    assert "GET /api/v1/ping -> 200" in out
    assert "Forced refresh" in out
    assert "InvalidClientError after one re-read of the source" in out
    assert "store updated -> next call recovers by itself: API 200" in out
    assert "token requests made by the two processes: 1" in out  # the shared cache step
    assert "token requests: {'success': 5, 'invalid_client': 1}" in out


def test_demo_runs_in_an_empty_directory_with_the_shipped_settings(run_cli, tmp_path):
    assert not any(tmp_path.iterdir())  # run_cli's working directory
    # The shell's own choices neither break the demo nor leak into it.
    result = run_cli("demo", env={"N3XT_CREDS_SOURCE": "vault", "N3XT_CREDS_ENV": "production"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "demo.toml" in result.stdout
    assert "store updated -> next call recovers by itself: API 200" in result.stdout
    assert result.stderr == ""


def test_import_does_not_import_dynaconf():
    import sys

    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, n3xt_creds, n3xt_creds.cli; print('dynaconf' in sys.modules)",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == "False", result.stderr
