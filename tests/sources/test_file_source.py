"""FileSource: mounted secret files, each failure with its own message."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from n3xt_creds import ConfigError, CredentialsNotFoundError, FileSource, SourceError
from n3xt_creds.sources.file import MAX_SECRET_FILE_BYTES

CANARY = "canary-file-8e2a-never-show"


def write_pair(directory: Path, client_id: str = "file-client", secret: str = CANARY) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "client_id").write_text(client_id)
    (directory / "client_secret").write_text(secret)


def test_reads_the_pair_and_strips_the_trailing_newline(tmp_path: Path) -> None:
    write_pair(tmp_path, "file-client\n", CANARY + "\n")
    creds = FileSource(tmp_path).get_credentials()
    assert creds.client_id == "file-client"
    assert creds.client_secret.get_secret_value() == CANARY
    assert creds.source == f"file:{tmp_path / 'client_id'}"


def test_custom_file_names(tmp_path: Path) -> None:
    (tmp_path / "id.txt").write_text("a")
    (tmp_path / "secret.txt").write_text("b")
    creds = FileSource(tmp_path, "id.txt", "secret.txt").get_credentials()
    assert (creds.client_id, creds.client_secret.get_secret_value()) == ("a", "b")


def test_rereads_files_at_each_call(tmp_path: Path) -> None:
    write_pair(tmp_path, secret="one")
    source = FileSource(tmp_path)
    assert source.get_credentials().client_secret.get_secret_value() == "one"
    (tmp_path / "client_secret").write_text("two")
    assert source.get_credentials().client_secret.get_secret_value() == "two"


def test_missing_directory_is_not_found_and_names_paths(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(CredentialsNotFoundError, match="does not exist") as info:
        FileSource(missing).get_credentials()
    assert info.value.looked_for == (str(missing / "client_id"), str(missing / "client_secret"))


def test_directory_that_is_a_file_is_not_found(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(CredentialsNotFoundError, match="is not a directory"):
        FileSource(tmp_path / "f").get_credentials()


def test_both_files_missing_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(
        CredentialsNotFoundError, match=r"neither .*client_id nor .*client_secret exists"
    ):
        FileSource(tmp_path).get_credentials()


def test_one_file_missing_names_it(tmp_path: Path) -> None:
    (tmp_path / "client_id").write_text("x")
    with pytest.raises(SourceError, match=r"client_id exists but .*client_secret does not"):
        FileSource(tmp_path).get_credentials()


def test_empty_file(tmp_path: Path) -> None:
    write_pair(tmp_path, secret="\n")
    with pytest.raises(SourceError, match=r"client_secret is empty"):
        FileSource(tmp_path).get_credentials()


def test_binary_file_is_refused(tmp_path: Path) -> None:
    write_pair(tmp_path)
    (tmp_path / "client_secret").write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(SourceError, match="not UTF-8"):
        FileSource(tmp_path).get_credentials()


def test_nul_bytes_are_refused(tmp_path: Path) -> None:
    write_pair(tmp_path, secret="abc\x00def")
    with pytest.raises(SourceError, match="NUL"):
        FileSource(tmp_path).get_credentials()


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    write_pair(tmp_path, secret="a" * (MAX_SECRET_FILE_BYTES + 1))
    with pytest.raises(SourceError, match="larger than 64 KiB"):
        FileSource(tmp_path).get_credentials()
    write_pair(tmp_path, secret="a" * MAX_SECRET_FILE_BYTES)
    assert len(FileSource(tmp_path).get_credentials().client_secret) == MAX_SECRET_FILE_BYTES


def test_a_directory_in_place_of_a_file(tmp_path: Path) -> None:
    (tmp_path / "client_id").write_text("x")
    (tmp_path / "client_secret").mkdir()
    with pytest.raises(SourceError, match="is a directory"):
        FileSource(tmp_path).get_credentials()


def test_unreadable_file(tmp_path: Path) -> None:
    """A file the process may not read. As root, permissions do not bind, so a forked
    child drops to uid 65534 (nobody) and reads the real file there."""
    base = Path(os.environ.get("TMPDIR", "/tmp")) / f"n3xt-unreadable-{os.getpid()}"
    base.mkdir(mode=0o755)
    try:
        write_pair(base)
        (base / "client_secret").chmod(0)
        if os.geteuid() != 0:
            with pytest.raises(SourceError, match="cannot be read by this process"):
                FileSource(base).get_credentials()
            return
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            try:
                os.setgid(65534)
                os.setuid(65534)
                try:
                    FileSource(base).get_credentials()
                    message = "no error"
                except SourceError as exc:
                    message = str(exc)
                os.write(write_end, message.encode())
            finally:
                os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            message = pipe.read().decode()
        os.waitpid(pid, 0)
        assert "cannot be read by this process (uid 65534)" in message
        assert CANARY not in message
    finally:
        for child in base.iterdir():
            child.unlink()
        base.rmdir()


def test_symlink_escaping_the_directory_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    write_pair(outside)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "client_id").write_text("x")
    (secrets / "client_secret").symlink_to(outside / "client_secret")
    with pytest.raises(SourceError, match="outside") as info:
        FileSource(secrets).get_credentials()
    assert CANARY not in str(info.value)


def test_symlink_inside_the_directory_is_followed(tmp_path: Path) -> None:
    write_pair(tmp_path / "real")
    (tmp_path / "client_id").symlink_to(tmp_path / "real" / "client_id")
    (tmp_path / "client_secret").symlink_to(Path("real") / "client_secret")
    assert FileSource(tmp_path).get_credentials().client_id == "file-client"


def test_dangling_symlink(tmp_path: Path) -> None:
    (tmp_path / "client_id").write_text("x")
    (tmp_path / "client_secret").symlink_to(tmp_path / "gone")
    with pytest.raises(SourceError, match="dangling symlink"):
        FileSource(tmp_path).get_credentials()


def kubernetes_volume(root: Path, version: str, client_id: str, secret: str) -> None:
    """Lay out a projected secret volume the way the kubelet does, and swap atomically."""
    snapshot = root / f"..{version}"
    write_pair(snapshot, client_id, secret)
    tmp_link = root / "..data_tmp"
    tmp_link.symlink_to(snapshot.name)
    os.replace(tmp_link, root / "..data")
    for name in ("client_id", "client_secret"):
        if not (root / name).is_symlink():
            (root / name).symlink_to(Path("..data") / name)


def test_kubernetes_atomic_data_swap_is_followed(tmp_path: Path) -> None:
    kubernetes_volume(tmp_path, "2026_11_27_01", "k8s-client", "first")
    source = FileSource(tmp_path)
    assert source.get_credentials().client_secret.get_secret_value() == "first"
    kubernetes_volume(tmp_path, "2026_11_27_02", "k8s-client-2", "second")
    creds = source.get_credentials()
    assert (creds.client_id, creds.client_secret.get_secret_value()) == ("k8s-client-2", "second")


def test_kubernetes_pair_comes_from_one_snapshot(tmp_path: Path) -> None:
    """Both files are read through the snapshot ..data named when reading began."""
    kubernetes_volume(tmp_path, "v1", "client-v1", "secret-v1")
    # A half-updated view: the top-level client_secret link points at another snapshot.
    write_pair(tmp_path / "..v2", "client-v2", "secret-v2")
    (tmp_path / "client_secret").unlink()
    (tmp_path / "client_secret").symlink_to(Path("..v2") / "client_secret")
    creds = FileSource(tmp_path).get_credentials()
    assert (creds.client_id, creds.client_secret.get_secret_value()) == ("client-v1", "secret-v1")


def test_kubernetes_data_link_pointing_outside_is_refused(tmp_path: Path) -> None:
    write_pair(tmp_path / "elsewhere")
    volume = tmp_path / "volume"
    volume.mkdir()
    (volume / "..data").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(SourceError, match=r"\.\.data points outside"):
        FileSource(volume).get_credentials()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"client_id_file": ""}, "client_id_file must be a non-empty string"),
        ({"client_secret_file": "/etc/passwd"}, "must be a name inside the directory"),
        ({"client_secret_file": "../up"}, "must be a name inside the directory"),
        ({"client_id_file": "same", "client_secret_file": "same"}, "are both 'same'"),
    ],
)
def test_bad_file_names_are_config_errors(
    tmp_path: Path, kwargs: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        FileSource(tmp_path, **kwargs)


def test_describe_names_paths(tmp_path: Path) -> None:
    assert str(tmp_path / "client_secret") in FileSource(tmp_path).describe()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX paths")
def test_default_directory_is_run_secrets() -> None:
    assert FileSource().directory == Path("/run/secrets")
