"""EnvSource: credentials from two environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, SupportsIndex

from .. import _environ
from .._core.arguments import non_empty_str
from .._secret import Secret
from ..credentials import Credentials
from ..errors import ConfigError, CredentialsNotFoundError, SourceError
from .base import pickle_refusal

if TYPE_CHECKING:  # settings build sources through it; the sources never import it
    from .options import SourceOptions

__all__ = ["EnvSource", "from_options"]


class EnvSource:
    """Read the client pair from environment variables (``N3XT_CLIENT_ID``/``N3XT_CLIENT_SECRET``).

    The simplest source, right for development, CI and platforms that inject secrets
    as variables. Both variables unset means "nothing here"
    (:class:`~n3xt_creds.CredentialsNotFoundError`: a chain tries its next source);
    only one set, or one set to an empty/blank value, is a half-done configuration
    worth stopping for and raises :class:`~n3xt_creds.SourceError` naming the
    variable. Leading/trailing whitespace (a stray newline) is stripped.

    ``environ`` defaults to :data:`os.environ` and is read at every call, so a value
    exported after start-up is seen; pass a mapping to control it in tests. A source
    holding such a mapping refuses to be pickled (:class:`TypeError`), as
    :class:`~n3xt_creds.Secret` does: the pickle would carry the secret.
    """

    def __init__(
        self,
        client_id_var: str = _environ.CLIENT_ID,
        client_secret_var: str = _environ.CLIENT_SECRET,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        for name, value in (
            ("client_id_var", client_id_var),
            ("client_secret_var", client_secret_var),
        ):
            non_empty_str(name, value, owner="EnvSource")
        if client_id_var == client_secret_var:
            raise ConfigError(
                f"client_id_var and client_secret_var are both {client_id_var!r}; "
                "the id and the secret need two different variables",
                key="client_secret_var",
                owner="EnvSource",
            )
        self.client_id_var = client_id_var
        self.client_secret_var = client_secret_var
        self._environ = environ

    def describe(self) -> str:
        """Say which variables this source reads."""
        return f"env (variables {self.client_id_var}, {self.client_secret_var})"

    def __repr__(self) -> str:
        return f"EnvSource(client_id_var={self.client_id_var!r}, client_secret_var={self.client_secret_var!r})"

    def __reduce_ex__(self, protocol: SupportsIndex) -> str | tuple[Any, ...]:
        # Only an injected mapping holds secret values: a source reading os.environ
        # pickles (as its variable names) and reads the other process's environment.
        if self._environ is not None:
            raise pickle_refusal(self)
        return super().__reduce_ex__(protocol)

    def get_credentials(self) -> Credentials:
        """Read both variables now; see the class docstring for what each outcome means."""
        # The environment (every variable of the process) and the raw values stay in
        # _read's frame, which has returned before anything is raised.
        outcome = self._read()
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def _read(self) -> Credentials | CredentialsNotFoundError | SourceError:
        environ = os.environ if self._environ is None else self._environ
        looked_for = (self.client_id_var, self.client_secret_var)
        raw_id = environ.get(self.client_id_var)
        raw_secret = environ.get(self.client_secret_var)
        if raw_id is None and raw_secret is None:
            return CredentialsNotFoundError(
                f"env: neither {self.client_id_var} nor {self.client_secret_var} is set",
                source="env",
                looked_for=looked_for,
            )
        for var, raw, other in (
            (self.client_id_var, raw_id, self.client_secret_var),
            (self.client_secret_var, raw_secret, self.client_id_var),
        ):
            if raw is None:
                return SourceError(
                    f"env: {other} is set but {var} is not; set both, or neither to let "
                    "another source provide the credentials",
                    source="env",
                )
            if not raw.strip():
                state = "empty" if raw == "" else "only whitespace"
                return SourceError(
                    f"env: {var} is set but {state}; export the real value or unset it",
                    source="env",
                )
        assert raw_id is not None
        assert raw_secret is not None
        return Credentials(
            client_id=raw_id.strip(),
            client_secret=Secret(raw_secret.strip()),
            source=f"env:{self.client_id_var}",
        )


def from_options(options: SourceOptions) -> EnvSource:
    """Build an :class:`~n3xt_creds.EnvSource` from ``[*.sources.env]`` (settings calls this).

    Keys: ``client_id_var`` (default ``N3XT_CLIENT_ID``), ``client_secret_var``
    (default ``N3XT_CLIENT_SECRET``). The variables are read from ``options.environ``.
    """
    client_id_var = options.get_str("client_id_var", default=_environ.CLIENT_ID)
    client_secret_var = options.get_str("client_secret_var", default=_environ.CLIENT_SECRET)
    options.finish()
    return options.build(
        EnvSource,
        client_id_var=client_id_var,
        client_secret_var=client_secret_var,
        environ=options.environ,
    )
