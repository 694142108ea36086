"""A real pre-fork server: gunicorn --preload with two sync workers.

The master builds the Authenticator and gets a token before forking (what
``--preload`` apps do at import); each worker must then report its own counters,
hold none of the master's token sockets, and get tokens over its own connection.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from n3xt_creds import Credentials
from n3xt_creds.testing import Emulator
from tests._poll import wait_until
from tests.authenticator._support import secret_of

pytest.importorskip("gunicorn")

APP = r"""
import json, os
from n3xt_creds import Authenticator, Credentials
from n3xt_creds._core import transport

class Source:
    def get_credentials(self):
        return Credentials(os.environ["T_CLIENT_ID"], os.environ["T_CLIENT_SECRET"])

auth = Authenticator(Source(), token_url=os.environ["T_TOKEN_URL"], timeout=5)
auth.get_token()  # the master uses it before the fork
MASTER_PID = os.getpid()
MASTER_SOCKETS = list(transport._OUR_SOCKETS)

def app(environ, start_response):
    report = {
        "pid": os.getpid(),
        "master": MASTER_PID,
        "master_sockets": len(MASTER_SOCKETS),
        "master_sockets_open_here": sum(s.fileno() != -1 for s in MASTER_SOCKETS),
        "refreshes_before": auth.stats.refreshes,
    }
    auth.invalidate()
    auth.get_token()
    report["refreshes_after"] = auth.stats.refreshes
    report["own_sockets"] = len(transport._OUR_SOCKETS)
    body = json.dumps(report).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_gunicorn_preload_workers_start_clean(
    n3xt_emulator: Emulator, creds: Credentials, tmp_path: Path
) -> None:
    (tmp_path / "prefork_app.py").write_text(APP)
    sock = tmp_path / "gunicorn.sock"
    env = {
        **os.environ,
        "T_CLIENT_ID": creds.client_id,
        "T_CLIENT_SECRET": secret_of(creds),
        "T_TOKEN_URL": n3xt_emulator.token_url(),
        "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path]),
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--preload",
            "-w",
            "2",
            "--bind",
            f"unix:{sock}",
            "--log-level",
            "warning",
            "prefork_app:app",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first_by_pid: dict[int, dict[str, int]] = {}
    try:
        # Bound and listening once the socket file exists (connections queue until a
        # worker accepts them).
        wait_until(lambda: sock.exists() or server.poll() is not None, timeout=30, what="gunicorn")
        assert server.poll() is None, server.communicate()[1][-2000:]
        deadline = time.monotonic() + 30
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(sock))) as client:
            while len(first_by_pid) < 2:
                assert time.monotonic() < deadline, f"saw workers {sorted(first_by_pid)}"
                report = client.get("http://worker/", timeout=10).json()
                first_by_pid.setdefault(report["pid"], report)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.communicate()
    for report in first_by_pid.values():
        assert report["pid"] != report["master"]
        assert report["master_sockets"] == 1
        assert report["master_sockets_open_here"] == 0  # the worker closed its copy
        assert report["refreshes_before"] == 0  # not the master's refresh
        assert report["refreshes_after"] == 1
        assert report["own_sockets"] == 1  # its own connection
