"""FileSource: credentials from mounted secret files (Docker secrets, Kubernetes volumes)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from .._core.arguments import non_empty_str
from .._secret import Secret
from .._text import escape_controls
from ..credentials import Credentials
from ..errors import ConfigError, CredentialsNotFoundError, SourceError
from ._files import MAX_CREDENTIAL_FILE_BYTES, read_small_file

if TYPE_CHECKING:  # settings build sources through it; the sources never import it
    from .options import SourceOptions

__all__ = ["MAX_SECRET_FILE_BYTES", "FileSource", "from_options"]

#: A client id or secret is a few dozen bytes; anything this big is the wrong file.
MAX_SECRET_FILE_BYTES = MAX_CREDENTIAL_FILE_BYTES

# Kubernetes projects a secret volume as ``..<timestamp>/`` plus a ``..data`` symlink
# that is swapped atomically on update; the visible files link through ``..data``.
_KUBERNETES_DATA_LINK = "..data"


class FileSource:
    """Read the client pair from two files in one directory (default ``/run/secrets``).

    Fits Docker/Compose secrets and Kubernetes secret volumes. Files are read at
    every call, so a rotated secret is picked up on the next token refresh.

    * Directory absent, or both files absent: "nothing here"
      (:class:`~n3xt_creds.CredentialsNotFoundError`), so a chain can move on.
    * One file present without the other, a file unreadable, empty, not UTF-8, larger
      than 64 KiB, not a regular file (a FIFO or device is refused without opening it
      for a blocking read), or a symlink leading outside ``directory``:
      :class:`~n3xt_creds.SourceError` naming the path.
    * Surrounding whitespace (the trailing newline of ``echo secret > file``) is stripped.
    * When the directory holds Kubernetes' ``..data`` link, both files are read from
      the one snapshot it points to, so an atomic update never yields the id of one
      version with the secret of another.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] = "/run/secrets",
        client_id_file: str = "client_id",
        client_secret_file: str = "client_secret",
    ) -> None:
        for key, name in (
            ("client_id_file", client_id_file),
            ("client_secret_file", client_secret_file),
        ):
            non_empty_str(key, name, owner="FileSource")
            if os.path.isabs(name) or ".." in Path(name).parts:
                raise ConfigError(
                    f"{key}={name!r} must be a name inside the directory, "
                    "not an absolute path or one that climbs out with '..'",
                    key=key,
                    owner="FileSource",
                )
        if client_id_file == client_secret_file:
            raise ConfigError(
                f"client_id_file and client_secret_file are both {client_id_file!r}",
                key="client_secret_file",
                owner="FileSource",
            )
        self.directory = Path(directory)
        self.client_id_file = client_id_file
        self.client_secret_file = client_secret_file

    def describe(self) -> str:
        """Say which files this source reads."""
        return f"file ({self.directory / self.client_id_file}, {self.directory / self.client_secret_file})"

    def __repr__(self) -> str:
        return (
            f"FileSource(directory={str(self.directory)!r}, client_id_file={self.client_id_file!r}, "
            f"client_secret_file={self.client_secret_file!r})"
        )

    def get_credentials(self) -> Credentials:
        """Read both files now; see the class docstring for what each outcome means."""
        id_path = self.directory / self.client_id_file
        secret_path = self.directory / self.client_secret_file
        looked_for = (str(id_path), str(secret_path))
        if not self.directory.is_dir():
            state = "is not a directory" if self.directory.exists() else "does not exist"
            raise CredentialsNotFoundError(
                f"file: directory {self.directory} {state}", source="file", looked_for=looked_for
            )
        root = self.directory.resolve()
        read_dir = self._snapshot_directory(root)
        id_exists = os.path.lexists(read_dir / self.client_id_file)
        secret_exists = os.path.lexists(read_dir / self.client_secret_file)
        if not id_exists and not secret_exists:
            raise CredentialsNotFoundError(
                f"file: neither {id_path} nor {secret_path} exists",
                source="file",
                looked_for=looked_for,
            )
        if not id_exists or not secret_exists:
            present, missing = (secret_path, id_path) if secret_exists else (id_path, secret_path)
            raise SourceError(
                f"file: {present} exists but {missing} does not; mount both files "
                "(or neither, to let another source provide the credentials)",
                source="file",
            )
        client_id = self._read(read_dir / self.client_id_file, shown_as=id_path, root=root)
        return Credentials(
            client_id=client_id.get_secret_value(),
            client_secret=self._read(
                read_dir / self.client_secret_file, shown_as=secret_path, root=root
            ),
            source=f"file:{id_path}",
        )

    def _snapshot_directory(self, root: Path) -> Path:
        """The directory to read both files from: Kubernetes' current snapshot if any."""
        data_link = root / _KUBERNETES_DATA_LINK
        if not os.path.lexists(data_link):
            return root
        snapshot = data_link.resolve()
        if not snapshot.is_relative_to(root):
            raise SourceError(
                f"file: {self.directory / _KUBERNETES_DATA_LINK} points outside {self.directory} "
                f"(to {escape_controls(snapshot)}); refusing to follow it",
                source="file",
            )
        return snapshot

    @staticmethod
    def _read(path: Path, *, shown_as: Path, root: Path) -> Secret:
        real = path.resolve()
        if not real.is_relative_to(root):
            raise SourceError(
                f"file: {shown_as} is a symlink to {escape_controls(real)}, outside {root}; "
                "refusing to read secrets from outside the secrets directory",
                source="file",
            )
        if not real.exists():
            raise SourceError(
                f"file: {shown_as} is a dangling symlink (to {escape_controls(real)})",
                source="file",
            )
        return read_small_file(real, label=f"file: {shown_as}", source="file")


def from_options(options: SourceOptions) -> FileSource:
    """Build a :class:`~n3xt_creds.FileSource` from ``[*.sources.file]`` (settings calls this).

    Keys: ``directory`` (default ``/run/secrets``), ``client_id_file`` (default
    ``client_id``), ``client_secret_file`` (default ``client_secret``).
    """
    directory = options.get_str("directory", default="/run/secrets")
    client_id_file = options.get_str("client_id_file", default="client_id")
    client_secret_file = options.get_str("client_secret_file", default="client_secret")
    options.finish()
    return options.build(
        FileSource,
        directory=directory,
        client_id_file=client_id_file,
        client_secret_file=client_secret_file,
    )
