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
from pathlib import Path

import pytest

from n3xt_creds import Credentials
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
