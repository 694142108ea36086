"""``python -m n3xt_creds.testing`` runs an emulator until it is told to stop."""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

FIELDS = ("url", "token_url", "api_url", "client_id", "client_secret")


def read_banner(process: subprocess.Popen[str], timeout: float = 20.0) -> dict[str, str]:
    """Read ``key: value`` lines from the emulator's stdout until every field is seen."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    banner: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while not set(FIELDS) <= set(banner):
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(
                f"banner incomplete before the deadline; got {sorted(banner)}"
            ) from None
        if line is None:
            raise AssertionError(f"the emulator exited early; got {sorted(banner)}")
        key, sep, value = line.strip().partition(": ")
        if sep and key in FIELDS:
            banner[key] = value
    return banner


@pytest.fixture
def emulator_process() -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "n3xt_creds.testing", "--expires-in", "120", "--project", "p-cli"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_cli_serves_tokens_until_signalled(
    emulator_process: subprocess.Popen[str], http: httpx.Client, stop_signal: signal.Signals
) -> None:
    banner = read_banner(emulator_process)
    assert banner["url"].startswith("http://127.0.0.1:")
    assert banner["token_url"] == f"{banner['url']}/v1/public/p-cli/oauth2/token"

    response = http.post(
        banner["token_url"],
        json={
            "client_id": banner["client_id"],
            "client_secret": banner["client_secret"],
            "grant_type": "client_credentials",
        },
    )
    assert response.status_code == 200
    assert response.json()["expires_in"] == 120
    token = response.json()["access_token"]
    api = http.get(banner["api_url"], headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 200

    emulator_process.send_signal(stop_signal)
    assert emulator_process.wait(timeout=10) == 0
    with pytest.raises(httpx.ConnectError):
        http.get(banner["url"])


def test_cli_help_warns_that_the_secret_is_printed() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "n3xt_creds.testing", "--help"],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    for option in ("--port", "--latency", "--expires-in", "--project"):
        assert option in result.stdout
    assert "client_secret IS printed" in result.stdout


def test_cli_reports_bad_settings() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "n3xt_creds.testing", "--expires-in", "-1"],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert result.returncode == 2
    assert "expires_in" in result.stderr
    assert result.stdout == ""
