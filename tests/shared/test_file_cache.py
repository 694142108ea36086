"""FileTokenCache: one token request per host, a private directory, a lease a dead holder frees."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import threading
from pathlib import Path

import httpx
import pytest

from n3xt_creds import FileTokenCache
from n3xt_creds._core.shared.file import default_directory
from n3xt_creds.testing import Emulator
from tests._poll import await_until
from tests.shared.conftest import MakeAuth


def test_processes_of_one_host_share_one_token(
    make_auth: MakeAuth, file_cache: FileTokenCache, n3xt_emulator: Emulator
) -> None:
    auths = [make_auth(file_cache) for _ in range(4)]
    tokens = {auth.get_token() for auth in auths}
    assert len(tokens) == 1
    assert n3xt_emulator.tokens_issued == 1
    stats = [auth.shared_cache_stats for auth in auths]
    assert [s.led for s in stats if s] == [1, 0, 0, 0]
    assert [s.adopted for s in stats if s] == [0, 1, 1, 1]
    assert os.stat(file_cache.directory).st_mode & 0o777 == 0o700


def test_the_token_never_touches_the_disk_in_clear(
    make_auth: MakeAuth, file_cache: FileTokenCache
) -> None:
    token = make_auth(file_cache).get_token()
    for entry in file_cache.directory.iterdir():
        assert token.encode() not in entry.read_bytes()


def test_a_directory_that_is_not_private_is_refused_and_nothing_fails(
    make_auth: MakeAuth, tmp_path: Path, n3xt_emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    cache = FileTokenCache(shared)
    caplog.set_level(logging.WARNING, logger="n3xt_creds")
    auths = [make_auth(cache) for _ in range(3)]
    assert all(auth.get_token() for auth in auths)
    assert n3xt_emulator.tokens_issued == 3  # each on its own: the store was not trusted
    for auth in auths:
        stats = auth.shared_cache_stats
        assert stats is not None
        assert stats.failures == {"directory_not_ours": 1}
        assert stats.fallbacks == 1
    warnings = [r for r in caplog.records if "directory_not_ours" in r.getMessage()]
    assert len(warnings) == 3  # one per authenticator (one per process in real life)
    assert "chmod 700" in warnings[0].getMessage()
    assert list(shared.iterdir()) == []


def test_a_symlinked_directory_is_refused(
    make_auth: MakeAuth, tmp_path: Path, n3xt_emulator: Emulator
) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(real)
    auth = make_auth(FileTokenCache(link))
    assert auth.get_token()
    stats = auth.shared_cache_stats
    assert stats is not None and stats.failures == {"directory_not_ours": 1}
    assert list(real.iterdir()) == []


def test_the_default_directory_is_per_user() -> None:
    assert default_directory({"XDG_RUNTIME_DIR": "/run/user/1000"}) == Path(
        "/run/user/1000/n3xt-creds"
    )
    assert str(os.geteuid()) in default_directory({}).name
    assert FileTokenCache().directory == default_directory()


def _hold_lease(directory: str, ready: multiprocessing.synchronize.Event) -> None:
    cache = FileTokenCache(directory)
    assert cache.lookup("k" * 40, owner="child", lease_seconds=60, unless=None).leased
    ready.set()
    signal.pause()


def test_a_killed_lease_holder_frees_the_lease_at_once(tmp_path: Path) -> None:
    directory = str(tmp_path / "cache")
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    holder = context.Process(target=_hold_lease, args=(directory, ready))
    holder.start()
    try:
        assert ready.wait(30)
        cache = FileTokenCache(directory)
        assert not cache.lookup("k" * 40, owner="me", lease_seconds=60, unless=None).leased
        os.kill(holder.pid or 0, signal.SIGKILL)
        holder.join(10)
        assert cache.lookup("k" * 40, owner="me", lease_seconds=60, unless=None).leased
        cache.release("k" * 40, "me")
    finally:
        if holder.is_alive():
            holder.kill()
            holder.join(10)


def test_invalidate_drops_the_shared_entry_only_while_it_holds_that_token(
    make_auth: MakeAuth, file_cache: FileTokenCache, n3xt_emulator: Emulator
) -> None:
    first, second = make_auth(file_cache), make_auth(file_cache)
    old = first.get_token()
    assert second.get_token() == old
    first.invalidate()  # drops the shared entry: it still held `old`
    new = first.get_token()
    assert new != old
    assert n3xt_emulator.tokens_issued == 2
    second.invalidate()  # its token is `old`: the shared `new` stays
    assert second.get_token() == new
    assert n3xt_emulator.tokens_issued == 2


def test_garbage_under_our_key_is_ignored_and_replaced(
    make_auth: MakeAuth, file_cache: FileTokenCache, caplog: pytest.LogCaptureFixture
) -> None:
    first = make_auth(file_cache)
    token = first.get_token()
    (entry,) = file_cache.directory.glob("*.token")
    entry.write_bytes(b"not an entry")
    caplog.set_level(logging.WARNING, logger="n3xt_creds")
    second = make_auth(file_cache)
    assert second.get_token() != token  # refreshed, and published over the garbage
    stats = second.shared_cache_stats
    assert stats is not None and stats.ignored_entries == 1 and stats.led == 1
    assert b"not an entry" not in entry.read_bytes()
    assert any("entry_garbage" in r.getMessage() for r in caplog.records)


class _DropHeldUntilReleased(FileTokenCache):
    """A file cache whose compare-and-delete waits for the test (a slow store)."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.drop_started = threading.Event()
        self.let_go = threading.Event()
        self.released_in_time: bool | None = None

    def drop(self, key: str, entry: bytes) -> bool:
        self.drop_started.set()
        self.released_in_time = self.let_go.wait(5)
        return super().drop(key, entry)


async def test_an_api_401_drops_the_shared_entry_off_the_event_loop(
    make_auth: MakeAuth, tmp_path: Path, n3xt_emulator: Emulator
) -> None:
    # The drop is a store call that can take a store timeout: the async flow runs it in a
    # worker thread. Held here until another task on the loop releases it: run on the
    # loop, it would block that task and give up unreleased after 5 s.
    cache = _DropHeldUntilReleased(tmp_path / "cache")
    auth = make_auth(cache)
    await auth.aget_token()
    n3xt_emulator.revoke_tokens()

    async def release_once_the_drop_waits() -> bool:
        await await_until(cache.drop_started.is_set, what="the shared drop to start")
        cache.let_go.set()
        return True

    async with httpx.AsyncClient(auth=auth) as client:
        released, response = await asyncio.gather(
            release_once_the_drop_waits(), client.get(n3xt_emulator.api_url())
        )
    assert released
    assert cache.released_in_time is True
    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [401]
    assert n3xt_emulator.tokens_issued == 2
