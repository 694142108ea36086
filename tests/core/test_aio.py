"""The core's one way to reach asyncio: a stand-in that imports it on first use."""

from __future__ import annotations

import asyncio as real_asyncio
import subprocess
import sys

from n3xt_creds._core.aio import asyncio


def test_the_stand_in_hands_out_asyncio_itself() -> None:
    assert asyncio.sleep is real_asyncio.sleep
    assert asyncio.CancelledError is real_asyncio.CancelledError


def test_asyncio_loads_at_the_first_async_call_not_at_import() -> None:
    code = (
        "import sys, n3xt_creds, n3xt_creds._core.refresher, n3xt_creds._core.transport;"
        "assert 'asyncio' not in sys.modules, 'imported too early';"
        "from n3xt_creds._core.aio import asyncio;"
        "asyncio.get_event_loop_policy;"
        "assert 'asyncio' in sys.modules; print('ok')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.stdout.strip() == "ok", result.stderr
