"""Env, file and chain sources: no secret reachable from an error, no blocking read, no pickle.

Issue 11 items 1, 2, 7 and 10 for the sources without a server (Vault and AWS have
their own in tests/sources/vault and tests/sources/aws).
"""

from __future__ import annotations

import os
import pickle
import threading
from pathlib import Path

import pytest

from n3xt_creds import ChainSource, EnvSource, FileSource, SourceError
from tests.sources._secrecy import assert_nothing_reachable, raised

CANARY = "canary-sources-5d1b-never-show"


def write_pair(directory: Path, secret: bytes) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "client_id").write_text("file-client")
    (directory / "client_secret").write_bytes(secret)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (CANARY.encode() + b"\xff\xfe", "not UTF-8"),
        (CANARY.encode() + b"\x00", "NUL"),
        (CANARY.encode() * 3000, "larger than 64 KiB"),
    ],
)
def test_a_bad_secret_file_leaves_its_content_in_no_corner_of_the_error(
    tmp_path: Path, content: bytes, message: str
) -> None:
    """Context chain (the UnicodeDecodeError held the raw bytes) and frame locals."""
    write_pair(tmp_path, content)
    error = raised(FileSource(tmp_path).get_credentials)
    assert isinstance(error, SourceError)
    assert message in str(error)
    assert error.__context__ is None
    assert_nothing_reachable(error, CANARY)


def _read_in_a_thread(source: FileSource) -> BaseException | None:
    """The error the read raised, or fail if it is still blocked after 5 s."""
    outcome: list[BaseException | None] = []

    def read() -> None:
        try:
            source.get_credentials()
        except BaseException as exc:
            outcome.append(exc)
        else:
            outcome.append(None)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    thread.join(timeout=5)
    if thread.is_alive():
        # Unblock the reader (a writer opens and closes the FIFO) so the thread ends.
        os.close(os.open(source.directory / source.client_secret_file, os.O_WRONLY))
        thread.join(timeout=5)
        pytest.fail("reading a FIFO named client_secret blocked")
    return outcome[0]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
def test_a_fifo_named_client_secret_is_refused_without_blocking(tmp_path: Path) -> None:
    write_pair(tmp_path, b"unused")
    (tmp_path / "client_secret").unlink()
    os.mkfifo(tmp_path / "client_secret")
    error = _read_in_a_thread(FileSource(tmp_path))
    assert isinstance(error, SourceError)
    assert "is a FIFO (named pipe), not a regular file" in str(error)
    assert str(tmp_path / "client_secret") in str(error)


def test_sources_holding_secrets_refuse_pickling_like_secret() -> None:
    injected = EnvSource(environ={"N3XT_CLIENT_ID": "id", "N3XT_CLIENT_SECRET": CANARY})
    for source in (injected, ChainSource([FileSource("/nowhere"), injected])):
        with pytest.raises(TypeError, match="refuses to be pickled"):
            pickle.dumps(source)


def test_sources_holding_no_secret_still_pickle() -> None:
    """EnvSource on os.environ and FileSource hold names only: a worker rebuilds them."""
    chain = ChainSource([EnvSource("APP_ID", "APP_SECRET"), FileSource("/run/secrets/n3xt")])
    copy = pickle.loads(pickle.dumps(chain))
    assert copy.describe() == chain.describe()


def test_a_half_set_environment_is_in_no_frame_local_of_the_error() -> None:
    """The raw secret and the whole environment mapping stayed in the raising frame."""
    source = EnvSource(environ={"N3XT_CLIENT_SECRET": CANARY, "OTHER_SECRET": CANARY + "2"})
    error = raised(source.get_credentials)
    assert isinstance(error, SourceError)
    assert_nothing_reachable(error, CANARY)
