"""``from_options`` factories for the built-in env and file sources.

They live here rather than in ``sources/env.py`` and ``sources/file.py`` so that the
sources stay ignorant of settings (data flows one way: settings → sources). Vault
and AWS, whose options are richer, keep their factories next to their sources.
"""

from __future__ import annotations

from collections.abc import Mapping

from . import _environ
from .errors import ConfigError
from .sources.env import EnvSource
from .sources.file import FileSource
from .sources.options import SourceOptions

__all__ = ["env_from_options", "file_from_options"]


def env_from_options(options: SourceOptions) -> EnvSource:
    """Build an :class:`~n3xt_creds.EnvSource` from ``[*.sources.env]``.

    Keys: ``client_id_var`` (default ``N3XT_CLIENT_ID``), ``client_secret_var``
    (default ``N3XT_CLIENT_SECRET``). When the settings were loaded with an injected
    ``environ``, the source reads the variables from that same mapping.
    """
    client_id_var = options.get_str("client_id_var", default=_environ.CLIENT_ID)
    client_secret_var = options.get_str("client_secret_var", default=_environ.CLIENT_SECRET)
    options.finish()
    environ: Mapping[str, str] | None = getattr(options, "environ", None)
    try:
        return EnvSource(client_id_var, client_secret_var, environ=environ)
    except ConfigError as exc:
        raise options.error(exc.key or "client_id_var", _strip_prefix(str(exc))) from None


def file_from_options(options: SourceOptions) -> FileSource:
    """Build a :class:`~n3xt_creds.FileSource` from ``[*.sources.file]``.

    Keys: ``directory`` (default ``/run/secrets``), ``client_id_file`` (default
    ``client_id``), ``client_secret_file`` (default ``client_secret``).
    """
    directory = options.get_str("directory", default="/run/secrets")
    client_id_file = options.get_str("client_id_file", default="client_id")
    client_secret_file = options.get_str("client_secret_file", default="client_secret")
    options.finish()
    try:
        return FileSource(directory, client_id_file, client_secret_file)
    except ConfigError as exc:
        raise options.error(exc.key or "directory", _strip_prefix(str(exc))) from None


def _strip_prefix(message: str) -> str:
    """``"FileSource: x must be ..."`` → ``"is invalid: x must be ..."`` for options.error."""
    _, _, rest = message.partition(": ")
    return f"is invalid: {rest or message}"
