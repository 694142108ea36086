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
