"""After os.fork() the child gets its own token and never deadlocks, even when the
parent was in the middle of a refresh and held the authenticator's lock at the fork.

The fork happens in a separate Python process (not in pytest's, which runs server
threads), driven by the script below; the test only reads its verdict, with a deadline.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from n3xt_creds import Credentials
from n3xt_creds._core.stats import AuthEvent, EventKind, StatsRecorder
from n3xt_creds.testing import Emulator
from tests.authenticator._support import secret_of

SCRIPT = r"""
import json, os, sys, threading, time
from n3xt_creds import Authenticator, Credentials, Secret

parent_pid = os.getpid()
release = threading.Event()

class ParentBlockedSource:
    # In the parent, the refresh is stuck reading credentials until released;
    # in the child, credentials come at once.
    def get_credentials(self):
        if os.getpid() == parent_pid:
            release.wait(20)
        return Credentials(os.environ["T_CLIENT_ID"], os.environ["T_CLIENT_SECRET"])

def poll(predicate, what):
    deadline = time.monotonic() + 10
    while not predicate():
        if time.monotonic() > deadline:
            sys.exit(f"timed out waiting for {what}")
        time.sleep(0.001)

auth = Authenticator(ParentBlockedSource(), token_url=sys.argv[1], timeout=5)
leader = threading.Thread(target=auth.get_token)
leader.start()
poll(lambda: auth._cell.in_flight() is not None, "the parent's refresh to start")

held, let_go = threading.Event(), threading.Event()
def hold_the_lock():
    with auth._cell._lock:
        held.set()
        let_go.wait(20)
holder = threading.Thread(target=hold_the_lock)
holder.start()
held.wait(10)

read_end, write_end = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(read_end)
    try:
        token = auth.get_token()
        auth.close()
        os.write(write_end, Secret(token).fingerprint.encode())
        os._exit(0)
    except BaseException as exc:
        os.write(write_end, ("error " + type(exc).__name__).encode())
        os._exit(1)
os.close(write_end)
let_go.set()
release.set()
leader.join(10)
holder.join(10)
parent_token = auth.get_token()

deadline = time.monotonic() + 15
while True:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    if time.monotonic() > deadline:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        sys.exit("the child deadlocked")
    time.sleep(0.01)
child = os.read(read_end, 200).decode()
auth.close()
print(json.dumps({
    "child_exit": os.waitstatus_to_exitcode(status),
    "child": child,
    "parent": Secret(parent_token).fingerprint,
}))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_gets_its_own_token_even_if_the_parent_held_the_lock(
    n3xt_emulator: Emulator, creds: Credentials, tmp_path: Path
) -> None:
    script = tmp_path / "fork_check.py"
    script.write_text(SCRIPT)
    env = {
        **os.environ,
        "T_CLIENT_ID": creds.client_id,
        "T_CLIENT_SECRET": secret_of(creds),
    }
    done = subprocess.run(
        [sys.executable, str(script), n3xt_emulator.token_url()],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    verdict = json.loads(done.stdout.strip().splitlines()[-1])
    assert verdict["child_exit"] == 0, verdict
    assert len(verdict["child"]) == 8  # a token fingerprint, not "error ..."
    assert verdict["child"] != verdict["parent"]  # two processes, two tokens
    assert n3xt_emulator.counters.token_requests == {"success": 2}


PREFORK_SCRIPT = r"""
import json, os, sys, time
from n3xt_creds import Authenticator, Credentials
from n3xt_creds._core import transport

class Source:
    def get_credentials(self):
        return Credentials(os.environ["T_CLIENT_ID"], os.environ["T_CLIENT_SECRET"])

def fds():
    return set(os.listdir("/proc/self/fd"))

def is_open(fd):
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False

# The master gets a token (the pool keeps its connection), then forks workers, the
# way gunicorn does.
auth = Authenticator(Source(), token_url=sys.argv[1], timeout=5)
auth.get_token()
parent_socks = list(transport._OUR_SOCKETS)
parent_fds = [s.fileno() for s in parent_socks]
workers = []
for _ in range(3):
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        report = {
            "stats_after_fork": auth.stats.refreshes,
            "inherited_open": [fd for fd in parent_fds if is_open(fd)],
        }
        before = fds()
        auth.invalidate()
        auth.get_token()
        report["stats_after_refresh"] = auth.stats.refreshes
        report["worker_sockets"] = len(transport._OUR_SOCKETS)
        auth.close()
        report["fds_left_after_close"] = sorted(fds() - before)
        os.write(write_end, json.dumps(report).encode())
        os._exit(0)
    os.close(write_end)
    workers.append((pid, read_end))

reports = []
for pid, read_end in workers:
    deadline = time.monotonic() + 15
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            sys.exit("a worker hung")
        time.sleep(0.005)
    reports.append(json.loads(os.read(read_end, 4000).decode()))

# The master's connection survived its workers: the next refresh reuses it.
auth.invalidate()
auth.get_token()
print(json.dumps({
    "parent_sockets": len(parent_socks),
    "parent_reused": list(transport._OUR_SOCKETS) == parent_socks and all(
        s.fileno() == fd for s, fd in zip(parent_socks, parent_fds)),
    "parent_stats": auth.stats.refreshes,
    "workers": reports,
}))
auth.close()
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_prefork_workers_reset_stats_and_drop_the_masters_sockets(
    n3xt_emulator: Emulator, creds: Credentials, tmp_path: Path
) -> None:
    script = tmp_path / "prefork_check.py"
    script.write_text(PREFORK_SCRIPT)
    env = {**os.environ, "T_CLIENT_ID": creds.client_id, "T_CLIENT_SECRET": secret_of(creds)}
    done = subprocess.run(
        [sys.executable, str(script), n3xt_emulator.token_url()],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    verdict = json.loads(done.stdout.strip().splitlines()[-1])
    assert verdict["parent_sockets"] == 1
    assert verdict["parent_reused"] is True  # the workers never touched it
    assert verdict["parent_stats"] == 2
    for worker in verdict["workers"]:
        assert worker["stats_after_fork"] == 0  # not the master's refresh
        assert worker["inherited_open"] == []  # the child's copy is closed
        assert worker["stats_after_refresh"] == 1
        assert worker["worker_sockets"] == 1  # its own connection
        assert worker["fds_left_after_close"] == []  # and close() releases it


TLS_SCRIPT = r"""
import datetime, ipaddress, json, os, ssl, sys, tempfile, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# A throwaway certificate for 127.0.0.1, trusted through SSL_CERT_FILE (httpx honours it).
key = ec.generate_private_key(ec.SECP256R1())
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
now = datetime.datetime.now(datetime.timezone.utc)
cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256()))
directory = tempfile.mkdtemp()
cert_file, key_file = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
with open(cert_file, "wb") as f:
    f.write(cert.public_bytes(serialization.Encoding.PEM))
with open(key_file, "wb") as f:
    f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))
os.environ["SSL_CERT_FILE"] = cert_file

connections = []  # requests served, per accepted connection (in the parent)
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def setup(self):
        super().setup()
        self.served = [0]
        connections.append(self.served)
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.served[0] += 1
        body = json.dumps({"status_code": 200, "expires_in": 3600, "token_type": "bearer",
                           "access_token": f"tok-{os.getpid()}-{time.monotonic_ns()}"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert_file, key_file)
server.socket = context.wrap_socket(server.socket, server_side=True)
threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
url = f"https://127.0.0.1:{server.server_address[1]}/v1/public/p/oauth2/token"

from n3xt_creds import Authenticator, Credentials
from n3xt_creds._core import transport

class Source:
    def get_credentials(self):
        return Credentials("client-1", "secret-1")

auth = Authenticator(Source(), token_url=url, api_hosts=["127.0.0.1"], timeout=5)
auth.get_token()
parent_socket = list(transport._OUR_SOCKETS)[0]
pid = os.fork()
if pid == 0:
    closed_here = parent_socket.fileno() == -1
    auth.invalidate()
    auth.get_token()  # the child's own TLS connection
    auth.close()
    os._exit(0 if closed_here else 3)
_, status = os.waitpid(pid, 0)
auth.invalidate()
auth.get_token()  # on the parent's TLS connection, if the child left it alone
auth.close()
server.shutdown()
print(json.dumps({"child_exit": os.waitstatus_to_exitcode(status),
                  "served_per_connection": [c[0] for c in connections]}))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_child_leaves_the_parents_tls_connection_working(tmp_path: Path) -> None:
    pytest.importorskip("cryptography")
    script = tmp_path / "tls_fork.py"
    script.write_text(TLS_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    verdict = json.loads(done.stdout.strip().splitlines()[-1])
    assert verdict["child_exit"] == 0  # its copy was closed
    # The parent's connection served both of its requests (no close_notify, no FIN from
    # the child), and the child's request came on a connection of its own.
    assert sorted(verdict["served_per_connection"]) == [1, 2]


def test_every_counter_restarts_from_zero_after_fork() -> None:
    # Every event kind once, then the at-fork reset: nothing of the parent's remains.
    recorder = StatsRecorder(None)
    for kind in typing.get_args(EventKind):
        recorder.record(AuthEvent(kind, duration=0.5))
    counters = {k: v for k, v in vars(recorder).items() if not k.startswith("_")}
    assert any(counters.values())
    recorder.reset_after_fork()
    assert {k: v for k, v in vars(recorder).items() if not k.startswith("_")} == dict.fromkeys(
        counters, 0
    ) | {"last_refresh_seconds": None}
