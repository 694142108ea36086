"""Real worker processes started together: one token request per fleet (redis) or per host
(file), and gunicorn --preload -w 4 workers sharing one token."""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx

from n3xt_creds import Credentials
from n3xt_creds.testing import Emulator
from n3xt_creds.testing._redis import RedisServer
from tests._poll import wait_until
from tests.authenticator._support import secret_of
from tests.shared._workers import fleet_worker


def _start_fleet(
    emulator: Emulator, creds: Credentials, locations: list[tuple[str, str]]
) -> list[tuple[str, str, float]]:
    context = multiprocessing.get_context("spawn")
    start, results = context.Event(), context.Queue()
    workers = [
        context.Process(
            target=fleet_worker,
            args=(
                emulator.token_url(),
                creds.client_id,
                secret_of(creds),
                backend,
                location,
                start,
                results,
            ),
        )
        for backend, location in locations
    ]
    for worker in workers:
        worker.start()
    try:
        start.set()
        outcomes = [results.get(timeout=60) for _ in workers]
    finally:
        for worker in workers:
            worker.join(30)
            if worker.is_alive():
                worker.kill()
    return outcomes


def test_a_cold_fleet_of_processes_makes_one_token_request(
    n3xt_emulator: Emulator, creds: Credentials, redis_server: RedisServer
) -> None:
    n3xt_emulator.latency = 0.2
    outcomes = _start_fleet(n3xt_emulator, creds, [("redis", redis_server.url)] * 6)
    assert [kind for kind, _, _ in outcomes] == ["ok"] * 6, outcomes
    assert len({token for _, token, _ in outcomes}) == 1
    assert n3xt_emulator.tokens_issued == 1


def test_processes_on_two_hosts_make_one_token_request_per_host(
    n3xt_emulator: Emulator, creds: Credentials, tmp_path: Path
) -> None:
    n3xt_emulator.latency = 0.2
    hosts = [("file", str(tmp_path / "host-a")), ("file", str(tmp_path / "host-b"))]
    outcomes = _start_fleet(n3xt_emulator, creds, hosts * 3)
    assert [kind for kind, _, _ in outcomes] == ["ok"] * 6, outcomes
    assert len({token for _, token, _ in outcomes}) == 2
    assert n3xt_emulator.tokens_issued == 2


APP = """
import os
from n3xt_creds import Authenticator, EnvSource, FileTokenCache, Secret

auth = Authenticator(
    EnvSource(),
    token_url=os.environ["T_TOKEN_URL"],
    shared_cache=FileTokenCache(os.environ["T_CACHE_DIR"]),
)

def app(environ, start_response):
    fingerprint = Secret(auth.get_token()).fingerprint
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"{os.getpid()} {fingerprint}".encode()]
"""

CONFIG = """
import os

def post_worker_init(worker):
    import app  # imported once by the master (--preload): the worker inherits it
    from n3xt_creds import Secret
    fingerprint = Secret(app.auth.get_token()).fingerprint  # every worker, cold, at once
    path = os.path.join(os.environ["T_READY_DIR"], str(os.getpid()))
    with open(path + ".tmp", "w") as handle:
        handle.write(fingerprint)
    os.replace(path + ".tmp", path)
"""


def test_gunicorn_preload_workers_share_one_token(
    n3xt_emulator: Emulator, creds: Credentials, tmp_path: Path
) -> None:
    n3xt_emulator.latency = 0.2
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    (tmp_path / "gunicorn_conf.py").write_text(textwrap.dedent(CONFIG))
    ready = tmp_path / "ready"
    ready.mkdir()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("N3XT_")},
        "N3XT_CLIENT_ID": creds.client_id,
        "N3XT_CLIENT_SECRET": secret_of(creds),
        "T_TOKEN_URL": n3xt_emulator.token_url(),
        "T_CACHE_DIR": str(tmp_path / "cache"),
        "T_READY_DIR": str(ready),
    }
    command = [sys.executable, "-m", "gunicorn", "--preload", "-w", "4"]
    command += ["-b", f"127.0.0.1:{port}", "-c", "gunicorn_conf.py", "app:app"]
    server = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(lambda: len(list(ready.iterdir())) >= 4, timeout=30, what="4 gunicorn workers")
        fingerprints = {path.read_text() for path in ready.iterdir() if path.suffix != ".tmp"}
        assert len(fingerprints) == 1
        assert n3xt_emulator.tokens_issued == 1
        answers = {httpx.get(f"http://127.0.0.1:{port}/").text.split()[1] for _ in range(8)}
        assert answers == fingerprints
        assert n3xt_emulator.tokens_issued == 1
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)
        if server.stderr is not None:
            server.stderr.close()
