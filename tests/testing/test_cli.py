"""The one emulator command: ``n3xt-creds emulator`` and ``python -m n3xt_creds.testing``
take the same flags and print the same thing; ``--clients N`` and counters over HTTP."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

COMMANDS = {
    "python -m n3xt_creds.testing": [sys.executable, "-m", "n3xt_creds.testing"],
    "n3xt-creds emulator": [sys.executable, "-m", "n3xt_creds.cli", "emulator"],
}


def first_line(process: subprocess.Popen[str], timeout: float = 20.0) -> str:
    """The first stdout line, waited for with a deadline."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        lines.put(process.stdout.readline() or None)

    threading.Thread(target=pump, daemon=True).start()
    try:
        line = lines.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError("no banner before the deadline") from None
    assert line is not None, "the emulator exited early"
    return line


@pytest.fixture
def start() -> Iterator[Callable[..., tuple[subprocess.Popen[str], dict[str, Any]]]]:
    started: list[subprocess.Popen[str]] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith("N3XT_")}

    def run(command: str, *flags: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
        process = subprocess.Popen(
            [*COMMANDS[command], "--port", "0", "--json", *flags],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        started.append(process)
        return process, json.loads(first_line(process))

    yield run
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_serves_tokens_and_counters_until_signalled(start, http, stop_signal) -> None:
    process, banner = start(
        "python -m n3xt_creds.testing", "--expires-in", "120", "--project", "p-cli"
    )
    assert banner["token_url"] == f"{banner['url']}/v1/public/p-cli/oauth2/token"
    (pair,) = banner["clients"]
    response = http.post(banner["token_url"], json={**pair, "grant_type": "client_credentials"})
    assert response.status_code == 200
    assert response.json()["expires_in"] == 120
    token = response.json()["access_token"]
    api = http.get(
        banner["api_base_url"] + "/v1/ping", headers={"Authorization": f"Bearer {token}"}
    )
    assert api.status_code == 200
    counters = http.get(banner["counters_url"]).json()
    assert counters["token_requests"] == {"success": 1}
    assert counters["api_calls"] == {"ok": 1}

    process.send_signal(stop_signal)
    assert process.wait(timeout=10) == 0
    with pytest.raises(httpx.ConnectError):
        http.get(banner["url"])


def test_clients_n_for_multi_process_tests(start, http) -> None:
    _, banner = start("n3xt-creds emulator", "--clients", "3")
    pairs = banner["clients"]
    assert len({p["client_id"] for p in pairs}) == 3
    for pair in pairs:
        answer = http.post(banner["token_url"], json={**pair, "grant_type": "client_credentials"})
        assert answer.status_code == 200
    assert http.get(banner["counters_url"]).json()["token_requests_total"] == 3


def test_both_commands_print_the_same_thing(start) -> None:
    shapes = []
    for command in COMMANDS:
        _, banner = start(command, "--clients", "2")
        shapes.append({k: type(v).__name__ for k, v in banner.items()})
    assert shapes[0] == shapes[1]
    texts = []
    for argv in COMMANDS.values():
        result = subprocess.run(
            [*argv, "--help"], capture_output=True, text=True, timeout=20, check=True
        )
        texts.append(result.stdout.split("\n", 1)[1])  # past the usage line's program name
    assert texts[0] == texts[1]
    for option in ("--port", "--latency", "--expires-in", "--project", "--clients", "--json"):
        assert option in texts[0]
    assert "secrets ARE printed on purpose" in texts[0]


def test_bad_flags_are_one_config_error_line() -> None:
    for flags in (["--expires-in", "-1"], ["--clients", "0"]):
        result = subprocess.run(
            [*COMMANDS["python -m n3xt_creds.testing"], "--port", "0", *flags],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        assert result.returncode == 2
        assert result.stderr.startswith("n3xt-creds: ConfigError: --")
        assert result.stdout == ""
