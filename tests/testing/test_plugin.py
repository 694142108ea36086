"""The pytest plugin: cheap to load, one server per session, fresh state per test."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from n3xt_creds.testing import Emulator

# Run in a separate pytest session so the order of tests and the session scope are real.
INNER_TESTS = textwrap.dedent(
    """
    import httpx
    from n3xt_creds.testing import Fault

    seen = {}

    def test_first_dirties_everything(n3xt_emulator):
        seen["url"] = n3xt_emulator.url
        seen["id"] = id(n3xt_emulator)
        creds = n3xt_emulator.add_client("leftover")
        n3xt_emulator.expires_in = 5
        n3xt_emulator.latency = 0.01
        n3xt_emulator.inject_fault(Fault.SERVER_ERROR)
        n3xt_emulator.pause()
        n3xt_emulator.resume()
        body = {"client_id": "leftover", "client_secret": creds.client_secret.get_secret_value(),
                "grant_type": "client_credentials"}
        assert httpx.post(n3xt_emulator.token_url(), json=body).status_code == 500
        # A hang that outlives this test must not leak into the next one's counters.
        n3xt_emulator.inject_fault(Fault.HANG)
        try:
            httpx.post(n3xt_emulator.token_url(), json=body, timeout=0.2)
        except httpx.ReadTimeout:
            pass
        else:
            raise AssertionError("the HANG fault answered")

    def test_second_starts_clean_on_the_same_server(n3xt_emulator):
        assert n3xt_emulator.url == seen["url"]
        assert id(n3xt_emulator) == seen["id"]
        assert n3xt_emulator.client_ids == []
        assert n3xt_emulator.pending_faults == []
        assert (n3xt_emulator.expires_in, n3xt_emulator.latency) == (3600, 0.0)
        assert n3xt_emulator.counters.token_requests_total == 0
        assert n3xt_emulator.tokens_issued == 0
    """
)


def run_pytest(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run pytest with only our plugin, loaded by its ``pytest11`` entry-point name."""
    # Autoloading every installed plugin (hypothesis alone takes ~1 s) is not under test.
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "n3xt_creds", "-p", "no:cacheprovider", *args],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def test_fixture_resets_state_between_tests_on_one_server(tmp_path: Path) -> None:
    (tmp_path / "test_inner.py").write_text(INNER_TESTS)

    result = run_pytest(tmp_path, "-q", "test_inner.py")

    assert result.returncode == 0, result.stdout[-2000:]
    assert "2 passed" in result.stdout


def test_fixture_is_listed(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, "--fixtures")
    assert "n3xt_emulator" in result.stdout
    assert "shared per session" in result.stdout


def test_loading_the_plugin_starts_and_imports_nothing() -> None:
    code = (
        "import sys, threading, n3xt_creds.testing.pytest_plugin\n"
        "print('n3xt_creds.testing.emulator' in sys.modules, 'http.server' in sys.modules,"
        " threading.active_count())"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    assert result.stdout.split() == ["False", "False", "1"]


def test_the_fixture_is_a_running_reset_emulator(n3xt_emulator: Emulator) -> None:
    assert n3xt_emulator.running
    assert n3xt_emulator.client_ids == []
    assert n3xt_emulator.counters.token_requests_total == 0
