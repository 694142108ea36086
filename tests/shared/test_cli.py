"""The command line with a shared cache: `token` in a shell loop makes one token request,
`check` shows the shared-cache step without ever printing the token."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from n3xt_creds.testing import Emulator
from n3xt_creds.testing._redis import RedisServer

SCRIPT = Path(sys.executable).parent / "n3xt-creds"
CANARY = "canary-SECRET-fleet-cli-51d0"


def _run(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("N3XT_", "REDIS_"))}
    return subprocess.run(
        [str(SCRIPT), *args],
        check=False,
        env={**clean, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _setup(tmp_path: Path, emulator: Emulator, backend: str) -> dict[str, str]:
    creds = emulator.add_client(client_id="cli-fleet", client_secret=CANARY)
    (tmp_path / "settings.toml").write_text(
        f'[default]\ntoken_url = "{emulator.token_url()}"\nsource = "env"\n'
        f'[default.shared_cache]\nbackend = "{backend}"\ndirectory = "{tmp_path / "cache"}"\n'
    )
    return {"N3XT_CLIENT_ID": creds.client_id, "N3XT_CLIENT_SECRET": CANARY}


def test_a_shell_loop_of_token_makes_one_token_request(
    tmp_path: Path, n3xt_emulator: Emulator
) -> None:
    env = _setup(tmp_path, n3xt_emulator, "file")
    tokens = set()
    for _ in range(3):
        result = _run("token", env=env, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        tokens.add(result.stdout.strip())
    assert len(tokens) == 1
    assert n3xt_emulator.tokens_issued == 1
    (token,) = tokens
    check = _run("check", "--json", env=env, cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    steps = {step["name"]: step for step in json.loads(check.stdout)["steps"]}
    shared = steps["shared cache"]
    assert shared["ok"] and shared["facts"]["entry"] == "present"
    assert shared["facts"]["lease"] == "works"
    assert "decryptable" in shared["detail"]
    for output in (check.stdout, check.stderr):
        assert token not in output and CANARY not in output


def test_check_reports_an_unreachable_redis_and_what_it_means(
    tmp_path: Path, n3xt_emulator: Emulator
) -> None:
    env = _setup(tmp_path, n3xt_emulator, "redis")
    env["REDIS_URL"] = "redis://:pw-in-url@127.0.0.1:1/0"  # nothing listens on port 1
    result = _run("check", env=env, cwd=tmp_path)
    assert result.returncode == 1, result.stdout
    assert "[FAIL] shared cache" in result.stdout
    assert "redis_unreachable" in result.stdout
    assert "Calls still work" in result.stdout
    assert "pw-in-url" not in result.stdout + result.stderr
    # The token itself still comes, on its own.
    token = _run("token", env=env, cwd=tmp_path)
    assert token.returncode == 0, token.stderr
    assert "redis_unreachable" in token.stderr  # the one warning


def test_check_with_a_live_redis(
    tmp_path: Path, n3xt_emulator: Emulator, redis_server: RedisServer
) -> None:
    env = _setup(tmp_path, n3xt_emulator, "redis")
    env["REDIS_URL"] = redis_server.url
    result = _run("check", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout
    assert "no entry yet" in result.stdout and "lease works" in result.stdout
