"""FileTokenCache: one token for all the processes of a host (pre-fork servers, CLIs, cron).

Each client's entry is a file in a private directory (mode 0700, owned by this
user, checked at every use), written by atomic replace so a reader sees the old
entry or the new one, never half of one. The refresh lease is an ``flock`` on a
lock file: the kernel releases it when its holder exits, however it dies, so a
killed holder never blocks the others. Entries are sealed (see :mod:`.base`): a
file copied from elsewhere, or written by another user, is ignored.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

from ..._environ import XDG_RUNTIME_DIR
from ...errors import ConfigError
from .base import MAX_ENTRY_BYTES, Lookup, StoreError

__all__ = ["FileTokenCache", "default_directory"]

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def default_directory(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_RUNTIME_DIR/n3xt-creds`` (a per-user tmpfs on systemd hosts), else
    ``<tempdir>/n3xt-creds-<uid>``."""
    env = os.environ if environ is None else environ
    runtime = env.get(XDG_RUNTIME_DIR, "")
    if runtime and os.path.isabs(runtime):
        return Path(runtime) / "n3xt-creds"
    return Path(tempfile.gettempdir()) / f"n3xt-creds-{os.geteuid()}"


class FileTokenCache:
    """A token cache shared by the processes of one host, in a private directory.

    Pass it as ``Authenticator(..., shared_cache=FileTokenCache())`` (or set
    ``[default.shared_cache] backend = "file"``) when several processes on one host
    use the same client — gunicorn/uWSGI workers, Celery workers, a shell loop of
    ``n3xt-creds token`` — so that they make one token request per token lifetime
    instead of one each. ``directory`` defaults to ``$XDG_RUNTIME_DIR/n3xt-creds``
    (else ``<tempdir>/n3xt-creds-<uid>``); it is created with mode 0700 and must be
    a real directory owned by this user with no group or other access, or the cache
    steps aside (a warning, then per-process refreshes). Entries are encrypted with
    a key derived from the client secret. For a fleet of hosts use
    :class:`~n3xt_creds.RedisTokenCache`.
    """

    backend = "file"

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        if directory is not None and not isinstance(directory, str | os.PathLike):
            raise ConfigError(
                f"directory must be a path, not {type(directory).__name__}",
                key="directory",
                owner="FileTokenCache",
            )
        if directory is not None and not str(directory).strip():
            directory = None
        self.directory = Path(directory) if directory is not None else default_directory()
        self._lock = threading.Lock()
        self._leases: dict[str, int] = {}  # owner -> fd holding the flock
        self._checked = False

    # -- TokenCache ----------------------------------------------------------------------

    def lookup(self, key: str, *, owner: str, lease_seconds: float, unless: bytes | None) -> Lookup:
        """The entry, or (absent, or exactly ``unless``) a try at the lease: one flock."""
        entry = self._read(key)
        if entry is not None and entry != unless:
            return Lookup(entry, False)
        return Lookup(entry, self._try_lease(key, owner))

    def publish(self, key: str, entry: bytes, *, ttl_seconds: float, owner: str | None) -> None:
        """Replace the entry atomically, then release ``owner``'s lease."""
        try:
            directory = self._directory()
            with self._entry_lock(key):
                fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=directory)
                try:
                    with os.fdopen(fd, "wb") as handle:
                        handle.write(entry)
                    os.replace(tmp, directory / f"{key}.token")
                except BaseException:
                    with contextlib.suppress(OSError):
                        os.unlink(tmp)
                    raise
        except OSError as error:
            raise _os_problem("write", error) from None
        finally:
            if owner is not None:
                self.release(key, owner)

    def release(self, key: str, owner: str) -> None:
        """Release the lease (closing the lock file's descriptor drops the flock)."""
        with self._lock:
            fd = self._leases.pop(owner, None)
        if fd is not None:
            os.close(fd)

    def drop(self, key: str, entry: bytes) -> bool:
        """Delete the entry if it is still exactly ``entry``."""
        try:
            directory = self._directory()
            with self._entry_lock(key):
                if self._read(key) != entry:
                    return False
                os.unlink(directory / f"{key}.token")
                return True
        except FileNotFoundError:
            return False
        except OSError as error:
            raise _os_problem("drop", error) from None

    def describe(self) -> str:
        """The directory."""
        return f"file directory {str(self.directory)!r}"

    def reset_after_fork(self) -> None:
        """In a forked child: the parent's leases are not ours (closing our copies keeps
        the parent's flock: it holds the same open file)."""
        self._lock = threading.Lock()
        leases, self._leases = self._leases, {}
        for fd in leases.values():
            with contextlib.suppress(OSError):
                os.close(fd)

    def __repr__(self) -> str:
        return f"FileTokenCache(directory={str(self.directory)!r})"

    # -- the directory and files ---------------------------------------------------------

    def _directory(self) -> Path:
        """The directory, created if missing and checked: ours, private, not a symlink."""
        path = self.directory
        try:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
            info = os.lstat(path)
        except OSError as error:
            raise _os_problem("directory", error) from None
        if not stat.S_ISDIR(info.st_mode):
            raise StoreError(
                "directory_not_ours", f"{str(path)!r} is not a directory (a symlink or a file)"
            )
        if info.st_uid != os.geteuid():
            raise StoreError(
                "directory_not_ours",
                f"{str(path)!r} belongs to uid {info.st_uid}, not to this user "
                f"(uid {os.geteuid()}); set a directory of your own",
            )
        if info.st_mode & 0o077:
            raise StoreError(
                "directory_not_ours",
                f"{str(path)!r} has mode {stat.S_IMODE(info.st_mode):o}: others could read "
                "or plant entries; make it 0700 (chmod 700) or choose another directory",
            )
        return path

    def _read(self, key: str) -> bytes | None:
        directory = self._directory()
        try:
            fd = os.open(directory / f"{key}.token", os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise _os_problem("read", error) from None
        try:
            data = os.read(fd, MAX_ENTRY_BYTES + 1)
        except OSError as error:
            raise _os_problem("read", error) from None
        finally:
            os.close(fd)
        return data

    def _try_lease(self, key: str, owner: str) -> bool:
        fd = self._open_lock_file(f"{key}.lease")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(fd)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False
            raise _os_problem("lease", error) from None
        with self._lock:
            self._leases[owner] = fd
        return True

    @contextlib.contextmanager
    def _entry_lock(self, key: str) -> Iterator[None]:
        """A short exclusive lock around replace and compare-and-delete of one entry."""
        fd = self._open_lock_file(f"{key}.lock")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _open_lock_file(self, name: str) -> int:
        try:
            return os.open(
                self._directory() / name,
                os.O_RDWR | os.O_CREAT | _O_NOFOLLOW | _O_CLOEXEC,
                0o600,
            )
        except OSError as error:
            raise _os_problem("lease", error) from None


def _os_problem(operation: str, error: OSError) -> StoreError:
    name = errno.errorcode.get(error.errno or 0, type(error).__name__)
    if error.errno == errno.ENOSPC:
        return StoreError("file_full", f"cannot {operation}: no space left on the device")
    if error.errno in (errno.EACCES, errno.EPERM, errno.ELOOP):
        return StoreError(
            "directory_not_ours", f"cannot {operation} ({name}): permission denied or a symlink"
        )
    return StoreError(f"file_{operation}_failed", f"cannot {operation} ({name})")
