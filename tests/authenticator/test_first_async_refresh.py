"""The first async refresh of a process does its first-use work (importing httpcore,
anyio and h11, the TLS context) off the event loop. How long the loop is blocked is
measured by ``make bench`` (section 6); here, deterministically, on which thread the
imports happen (an audit hook in a fresh interpreter)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from n3xt_creds import Credentials
from n3xt_creds.testing import Emulator
from tests.authenticator._support import secret_of

SCRIPT = r"""
import asyncio, json, os, sys, threading
from n3xt_creds import Authenticator, Credentials

on_loop = []
loop_thread = None

def hook(event, args):
    if event == "import" and threading.get_ident() == loop_thread:
        on_loop.append(args[0])

class Source:
    def get_credentials(self):
        return Credentials(os.environ["T_CLIENT_ID"], os.environ["T_CLIENT_SECRET"])

client = None
if sys.argv[2] == "injected":
    import httpx
    client = httpx.AsyncClient()  # made before the loop: what an app's startup does
auth = Authenticator(Source(), token_url=sys.argv[1], timeout=5, async_http_client=client)

async def main():
    global loop_thread
    loop_thread = threading.get_ident()
    sys.addaudithook(hook)
    await auth.aget_token()
    loop_thread = None
    await auth.aclose()
    if client is not None:
        await client.aclose()

asyncio.run(main())
heavy = ("httpcore", "anyio", "h11", "certifi")
print(json.dumps(sorted({m for m in on_loop if m.split(".")[0] in heavy})))
"""


@pytest.mark.parametrize("client", ["shared", "injected"])
def test_first_async_refresh_imports_nothing_heavy_on_the_loop(
    n3xt_emulator: Emulator, creds: Credentials, client: str
) -> None:
    env = {**os.environ, "T_CLIENT_ID": creds.client_id, "T_CLIENT_SECRET": secret_of(creds)}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, n3xt_emulator.token_url(), client],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
