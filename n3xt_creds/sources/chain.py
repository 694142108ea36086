"""ChainSource: try several sources in order, report everything they tried."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from ..credentials import Credentials
from ..errors import ConfigError, CredentialsNotFoundError
from .base import CredentialSource, describe_source

__all__ = ["ChainSource"]

_log = logging.getLogger("n3xt_creds")


class ChainSource:
    """Try each source in order and return the first credentials found.

    Use it when the same code runs in places that keep secrets differently, e.g.
    ``ChainSource([EnvSource(), FileSource()])``: variables on a laptop, mounted files
    in Kubernetes. A source that has nothing (:class:`~n3xt_creds.CredentialsNotFoundError`)
    is skipped; a source that *fails* (:class:`~n3xt_creds.SourceError`) stops the chain
    and its error propagates, because silently skipping a broken backend would hide
    the outage behind whichever stale credentials come next.

    When no source has credentials, the raised error lists every source and exactly
    what it looked for (variable names, file paths, secret ids), and carries each
    source's own error in ``attempts``. :attr:`last_source` tells which source
    served the last successful call.
    """

    def __init__(self, sources: Iterable[CredentialSource]) -> None:
        self.sources: tuple[CredentialSource, ...] = tuple(sources)
        if not self.sources:
            raise ConfigError("ChainSource needs at least one source", key="chain")
        for source in self.sources:
            if not callable(getattr(source, "get_credentials", None)):
                raise ConfigError(
                    f"ChainSource: {source!r} is not a credential source (no get_credentials())",
                    key="chain",
                )
        self.last_source: CredentialSource | None = None

    def describe(self) -> str:
        """Say which sources are tried, in order."""
        return "chain [" + ", ".join(describe_source(s) for s in self.sources) + "]"

    def __repr__(self) -> str:
        return f"ChainSource({list(self.sources)!r})"

    def get_credentials(self) -> Credentials:
        """Return the first source's credentials; see the class docstring."""
        attempts: list[CredentialsNotFoundError] = []
        for source in self.sources:
            try:
                credentials = source.get_credentials()
            except CredentialsNotFoundError as exc:
                _log.debug("chain: %s has no credentials: %s", describe_source(source), exc)
                attempts.append(exc)
                continue
            self.last_source = source
            return credentials
        lines = [f"no source had N3XT credentials; tried {len(self.sources)}:"]
        for index, (source, error) in enumerate(zip(self.sources, attempts, strict=True), start=1):
            lines.append(f"  {index}. {describe_source(source)}: {error}")
        looked_for = [item for error in attempts for item in error.looked_for]
        raise CredentialsNotFoundError(
            "\n".join(lines), source="chain", looked_for=looked_for, attempts=attempts
        )
