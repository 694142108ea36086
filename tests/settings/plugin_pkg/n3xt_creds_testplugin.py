"""A tiny third-party source for tests: credentials from one JSON file.

Registered under the ``n3xt_creds.sources`` entry-point group by the
``n3xt_creds_testplugin-0.1.dist-info`` next to it — exactly what ``pip install``
of a package declaring the entry point leaves on ``sys.path``.
"""

from __future__ import annotations

import json
from pathlib import Path

from n3xt_creds import Credentials, CredentialsNotFoundError, Secret, SourceError
from n3xt_creds.sources.options import SourceOptions


class JsonFileSource:
    """Reads ``{"client_id": ..., "client_secret": ...}`` from ``path``."""

    def __init__(self, path: str, *, id_key: str = "client_id") -> None:
        self.path = Path(path)
        self.id_key = id_key

    def describe(self) -> str:
        return f"jsonfile ({self.path})"

    def get_credentials(self) -> Credentials:
        if not self.path.exists():
            raise CredentialsNotFoundError(
                f"jsonfile: {self.path} does not exist",
                source="jsonfile",
                looked_for=[str(self.path)],
            )
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except ValueError:
            raise SourceError(f"jsonfile: {self.path} is not JSON", source="jsonfile") from None
        return Credentials(
            data[self.id_key], Secret(data["client_secret"]), source=f"jsonfile:{self.path}"
        )


def from_options(options: SourceOptions) -> JsonFileSource:
    """The factory named by the entry point."""
    source = JsonFileSource(
        options.get_str("path"), id_key=options.get_str("id_key", default="client_id")
    )
    options.finish()
    return source
