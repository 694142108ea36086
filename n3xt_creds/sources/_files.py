"""One reader for the small files that hold a credential: FileSource's client pair, the
Vault token file, the AppRole ``secret_id`` file and the Kubernetes service-account JWT.

Every such read has the same dangers, handled here once:

* a FIFO, socket or device named like the file would block the read forever, outside
  any deadline: the file is opened non-blocking and anything but a regular file is
  refused before a single byte is read;
* a huge file (the wrong volume mounted) is refused after 64 KiB, not read whole;
* the content never reaches an error: not in the message, not in the exception's
  context chain (errors are raised after leaving every ``except`` block) and not in
  the frame locals of its traceback (the raw bytes live only in a helper frame that
  has returned before anything is raised).
"""

from __future__ import annotations

import os
import stat

from .._secret import Secret
from .._text import escape_controls
from ..errors import SourceError

__all__ = ["MAX_CREDENTIAL_FILE_BYTES", "read_small_file"]

#: A client id, secret, Vault token or JWT is a few KiB at most; anything bigger is
#: the wrong file.
MAX_CREDENTIAL_FILE_BYTES = 64 * 1024

_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
_KINDS = (
    (stat.S_ISDIR, "a directory, expected a file"),
    (stat.S_ISFIFO, "a FIFO (named pipe), not a regular file"),
    (stat.S_ISSOCK, "a socket, not a regular file"),
    (stat.S_ISCHR, "a character device, not a regular file"),
    (stat.S_ISBLK, "a block device, not a regular file"),
)


def read_small_file(path: str | os.PathLike[str], *, label: str, source: str) -> Secret:
    """The stripped text of the regular file ``path``, as a :class:`~n3xt_creds.Secret`.

    ``label`` names the file in messages (``"file: /run/secrets/client_secret"``,
    ``"vault approle: secret_id file /etc/approle"``); ``source`` goes on the
    :class:`~n3xt_creds.SourceError` raised when the file is absent, unreadable, not a
    regular file, larger than 64 KiB, not UTF-8, empty or holds NUL bytes.
    """
    problem = _open_problem(path)
    if isinstance(problem, str):
        raise SourceError(f"{label} {problem}", source=source)
    fd = problem
    try:
        verdict = _decode(_read_capped(fd))
    finally:
        os.close(fd)
    if isinstance(verdict, str):
        raise SourceError(f"{label} {verdict}", source=source)
    return verdict


def _open_problem(path: str | os.PathLike[str]) -> int | str:
    """An open descriptor on the regular file ``path``, or what is wrong with it."""
    problem = ""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:
        problem = "does not exist"
    except PermissionError:
        problem = (
            f"exists but cannot be read by this process (uid {os.getuid()}); check the file "
            "mode (and a Kubernetes volume's defaultMode/fsGroup)"
        )
    except OSError as exc:
        problem = f"could not be read: {escape_controls(exc.strerror or type(exc).__name__)}"
    if problem:
        return problem
    mode = os.fstat(fd).st_mode
    if stat.S_ISREG(mode):
        return fd
    os.close(fd)
    kind = next((text for test, text in _KINDS if test(mode)), "not a regular file")
    return f"is {kind}; refusing to read it (a read could block forever)"


def _read_capped(fd: int) -> bytes | None:
    """Everything in ``fd``, or ``None`` once it passes the size cap."""
    chunks: list[bytes] = []
    size = 0
    while size <= MAX_CREDENTIAL_FILE_BYTES:
        chunk = os.read(fd, MAX_CREDENTIAL_FILE_BYTES + 1 - size)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
    return None


def _decode(raw: bytes | None) -> Secret | str:
    """The stripped text of ``raw`` as a Secret, or the problem with it (never its content)."""
    if raw is None:
        return (
            f"is larger than {MAX_CREDENTIAL_FILE_BYTES // 1024} KiB; it cannot be a credential "
            "(wrong file mounted?)"
        )
    try:
        text = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        text = None
    if text is None:
        return (
            "is not UTF-8 text (binary content?); write the plain value (base64-decode a "
            "Kubernetes secret before storing it)"
        )
    if not text:
        return "is empty"
    if "\x00" in text:
        return "contains NUL bytes (binary content?)"
    return Secret(text)
