"""VaultSource: N3XT credentials from a HashiCorp Vault / OpenBao KV secret.

The HTTP details (redirect guard, bounded answers) live in ``_http``; login and
token renewal in ``_auth``; what each answer means in ``_answers``; the retry loop
(the core's RetryPolicy) is shared with the AWS source. This module reads the
secret and turns each outcome into what the rest of n3xt_creds expects.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any, NoReturn, SupportsIndex
from urllib.parse import urlsplit

from ... import _environ
from ..._core.arguments import non_empty_str, positive_seconds
from ..._core.retry import RetryPolicy
from ..._secret import Secret
from ...credentials import Credentials
from ...errors import ConfigError, SourceError
from .._retrying import NO_RETRY_AFTER, call_with_retries, retry_from_options
from ..base import pickle_refusal
from ..options import SourceOptions
from ._answers import SecretAddress, credentials_from, read_error, unavailable_error
from ._auth import (
    DEFAULT_KUBERNETES_JWT_FILE,
    TokenKeeper,
    VaultAppRoleAuth,
    VaultKubernetesAuth,
    VaultTokenAuth,
)
from ._http import (
    MAX_ANSWER_BYTES,
    AnswerTooLargeError,
    RedirectRefusedError,
    TLSVaultError,
    TransientVaultError,
    VaultHTTPError,
    build_client,
)

__all__ = [
    "DEFAULT_RETRY",
    "VaultAppRoleAuth",
    "VaultKubernetesAuth",
    "VaultSource",
    "VaultTokenAuth",
    "from_options",
]

_log = logging.getLogger("n3xt_creds")

AnyVaultAuth = VaultTokenAuth | VaultAppRoleAuth | VaultKubernetesAuth

#: The retry policy of a VaultSource built without one: 4 reads at most, backoff from
#: 0.2 s capped at 2 s, no retry starting later than 15 s after the first read.
DEFAULT_RETRY = RetryPolicy(max_attempts=4, base_delay=0.2, max_delay=2.0, deadline=15.0)


class VaultSource:
    """Read the client pair from a Vault KV secret (v2 by default, or v1).

    ``url`` defaults to ``VAULT_ADDR``, ``namespace`` to ``VAULT_NAMESPACE`` and
    ``ca_cert`` to ``VAULT_CACERT`` (``client_cert``/``client_key`` to
    ``VAULT_CLIENT_CERT``/``VAULT_CLIENT_KEY``), read once at construction from
    ``environ`` (default :data:`os.environ`). ``auth`` defaults to
    :class:`VaultTokenAuth` (``VAULT_TOKEN``, else ``~/.vault-token``). The secret at
    ``<mount_point>/<path>`` must hold the keys ``client_id_key`` and
    ``client_secret_key``; ``version`` pins a KV v2 version.

    Outcomes of :meth:`get_credentials` (the message always names address and path):

    * no secret at the path, or the (pinned) KV v2 version deleted or destroyed:
      :class:`~n3xt_creds.CredentialsNotFoundError` saying which;
    * permission denied (after one fresh login, for AppRole/Kubernetes): SourceError
      with the policy the token needs, no retry;
    * sealed, 5xx, 429, unreachable: retried within ``retry`` (a
      :class:`~n3xt_creds.RetryPolicy`, the Authenticator's vocabulary; default
      :data:`DEFAULT_RETRY`) with jittered backoff, ``Retry-After`` honoured (seconds or
      an HTTP-date) when it fits the policy's deadline, then SourceError with
      ``retryable=True``;
    * an answer larger than 1 MiB (or compressed although we ask for none): refused
      while it is read, SourceError;
    * a key missing or not a string: SourceError naming the key (never a value);
    * a redirect to another address (a standby node): refused, SourceError — the
      Vault token is never sent to another origin.

    Vault is read on every call (the authenticator calls once per token refresh).
    ``clock``, ``sleep``, ``rng``, ``environ`` and ``session`` (a ``requests.Session``)
    are injectable for tests. ``VAULT_SKIP_VERIFY`` is deliberately *not* honoured:
    turning TLS verification off must be an explicit ``verify=False``. The source holds
    a Vault token once it has read, so it refuses to be pickled (build one per process).
    """

    def __init__(
        self,
        url: str | None = None,
        path: str = "n3xt/api",
        mount_point: str = "secret",
        kv_version: int = 2,
        auth: AnyVaultAuth | None = None,
        *,
        namespace: str | None = None,
        client_id_key: str = "client_id",
        client_secret_key: str = "client_secret",
        version: int | None = None,
        verify: bool = True,
        ca_cert: str | os.PathLike[str] | None = None,
        client_cert: str | os.PathLike[str] | None = None,
        client_key: str | os.PathLike[str] | None = None,
        timeout: float = 5.0,
        retry: RetryPolicy = DEFAULT_RETRY,
        environ: Mapping[str, str] | None = None,
        session: Any = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self.url = _check_url(url or env.get(_environ.VAULT_ADDR, "").strip())
        self.path = _check_segment("path", path)
        self.mount_point = _check_segment("mount_point", mount_point)
        if kv_version not in (1, 2) or isinstance(kv_version, bool):
            raise ConfigError(
                f"kv_version must be 1 or 2, got {kv_version!r}",
                key="kv_version",
                owner="VaultSource",
            )
        self.kv_version = kv_version
        if version is not None and (
            isinstance(version, bool) or not isinstance(version, int) or version < 1
        ):
            raise ConfigError(
                f"version must be a positive integer, got {version!r}",
                key="version",
                owner="VaultSource",
            )
        if version is not None and kv_version == 1:
            raise ConfigError(
                "version pins a KV v2 version; KV v1 has no versions",
                key="version",
                owner="VaultSource",
            )
        self.version = version
        client_id_key = non_empty_str("client_id_key", client_id_key, owner="VaultSource")
        client_secret_key = non_empty_str(
            "client_secret_key", client_secret_key, owner="VaultSource"
        )
        if client_id_key == client_secret_key:
            raise ConfigError(
                "client_id_key and client_secret_key must differ",
                key="client_secret_key",
                owner="VaultSource",
            )
        self.client_id_key = client_id_key
        self.client_secret_key = client_secret_key
        self.namespace = (namespace or env.get(_environ.VAULT_NAMESPACE, "")).strip("/ ") or None
        self.timeout = positive_seconds("timeout", timeout, owner="VaultSource")
        if not isinstance(retry, RetryPolicy):
            raise ConfigError(
                f"retry must be a n3xt_creds.RetryPolicy, not {type(retry).__name__}",
                key="retry",
                owner="VaultSource",
            )
        self.retry = retry
        ca: str | os.PathLike[str] | None = ca_cert or env.get(_environ.VAULT_CACERT) or None
        self.verify: bool | str = str(ca) if (verify and ca) else bool(verify)
        cert = client_cert or env.get(_environ.VAULT_CLIENT_CERT) or None
        cert_key = client_key or env.get(_environ.VAULT_CLIENT_KEY) or None
        if bool(cert) != bool(cert_key):
            raise ConfigError(
                "client_cert and client_key go together; set both or neither",
                key="client_key",
                owner="VaultSource",
            )
        self.client_cert: tuple[str, str] | None = (
            (str(cert), str(cert_key)) if cert and cert_key else None
        )
        self.auth: AnyVaultAuth = auth if auth is not None else VaultTokenAuth()
        if not isinstance(self.auth, (VaultTokenAuth, VaultAppRoleAuth, VaultKubernetesAuth)):
            raise ConfigError(
                f"auth must be a Vault auth object, got {type(auth).__name__}",
                key="auth",
                owner="VaultSource",
            )
        self._keeper = TokenKeeper(self.auth, environ=env, clock=clock)
        self._session = session
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._client: Any = None
        self._lock = threading.Lock()
        self._address = SecretAddress(
            self.url, self.mount_point, self.path, self.kv_version, self.version
        )
        _LIVE.add(self)

    # -- descriptions --------------------------------------------------------------
    @property
    def location(self) -> str:
        """``secret/n3xt/api`` (plus ``@v3`` when a version is pinned)."""
        return self._address.location

    def describe(self) -> str:
        """A one-line, secret-free description: address, auth, KV version and path."""
        ns = f", namespace {self.namespace}" if self.namespace else ""
        return (
            f"vault {self.url} ({self.auth.describe()}, kv v{self.kv_version} {self.location}{ns})"
        )

    def __repr__(self) -> str:
        return (
            f"VaultSource(url={self.url!r}, mount_point={self.mount_point!r}, path={self.path!r}, "
            f"kv_version={self.kv_version}, auth={self.auth!r}, namespace={self.namespace!r})"
        )

    def __reduce_ex__(self, protocol: SupportsIndex) -> NoReturn:
        raise pickle_refusal(self)

    def _reset_after_fork(self) -> None:
        # In a forked child only the forking thread exists: a lock another thread held
        # would never be released, and the parent's pooled connections must not be
        # shared. The login token stays valid and is kept.
        self._lock = threading.Lock()
        self._client = None

    def close(self) -> None:
        """Close the HTTP connections to Vault (a later read opens new ones).

        A ``session`` passed in is left open: its owner closes it.
        """
        with self._lock:
            client, self._client = self._client, None
            if client is not None and self._session is None:
                client.adapter.close()

    # -- reading -------------------------------------------------------------------
    def get_credentials(self) -> Credentials:
        """Read the secret now; see the class docstring for every outcome."""
        # Only the outcome is kept here, never the answer: an error raised from this
        # frame must not have the secret in its traceback's frame locals.
        with self._lock:
            outcome = self._fetch()
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def _fetch(self) -> Credentials | Exception:
        """The credentials, or the error to raise (built outside any ``except`` block)."""
        failure: Exception | None = None
        try:
            return credentials_from(
                call_with_retries(
                    self._read_once,
                    policy=self.retry,
                    classify=_classify,
                    give_up=lambda exc, attempts: unavailable_error(
                        exc, attempts, at=self._address
                    ),
                    clock=self._clock,
                    sleep=self._sleep,
                    rng=self._rng,
                    label="vault",
                ),
                at=self._address,
                client_id_key=self.client_id_key,
                client_secret_key=self.client_secret_key,
            )
        except (VaultHTTPError, RedirectRefusedError, TLSVaultError, AnswerTooLargeError) as exc:
            failure = exc.with_traceback(None)
        return self._failure(failure)

    def _failure(self, exc: Exception) -> Exception:
        if isinstance(exc, VaultHTTPError):
            return read_error(exc, at=self._address, auth_method=self.auth.method)
        if isinstance(exc, RedirectRefusedError):
            return SourceError(
                f"vault: {self.url} redirected the read of {self.location} to another "
                f"address ({exc.location}), as a standby node does. The Vault token is never "
                "sent to another origin: point url at the active node or at a load balancer "
                "that forwards to it",
                source="vault",
            )
        if isinstance(exc, AnswerTooLargeError):
            return SourceError(
                f"vault: the answer from {self.url} reading {self.location} was refused: {exc} "
                f"(the limit is {MAX_ANSWER_BYTES // 1024} KiB). Is url a Vault server, and "
                "is this path a KV secret?",
                source="vault",
            )
        return SourceError(
            f"vault: TLS handshake with {self.url} failed (certificate not trusted or "
            "client certificate refused); set ca_cert / VAULT_CACERT to the CA that "
            "signed Vault's certificate, and check client_cert/client_key",
            source="vault",
        )

    def _read_once(self) -> Any:
        if self._client is None:
            self._client = build_client(
                url=self.url,
                namespace=self.namespace,
                verify=self.verify,
                cert=self.client_cert,
                timeout=self.timeout,
                session=self._session,
            )
        client = self._client
        try:
            return self._read(client, self._keeper.token(client))
        except VaultHTTPError as exc:
            # Vault says "permission denied" alike for a policy gap and for a token it
            # no longer knows; a fresh login tells them apart, once.
            if exc.status_code != 403 or not self._keeper.can_login:
                raise
        _log.info("vault: %s was refused (403); logging in again once", self.location)
        self._keeper.forget()
        return self._read(client, self._keeper.token(client))

    def _read(self, client: Any, token: Secret) -> Any:
        # The raw token sits on the hvac client only for the request: between reads it
        # is held as a Secret (by the TokenKeeper), never as a plain string.
        client.token = token.get_secret_value()
        try:
            if self.kv_version == 2:
                return client.secrets.kv.v2.read_secret_version(
                    path=self.path,
                    version=self.version,
                    mount_point=self.mount_point,
                    raise_on_deleted_version=True,
                )
            return client.secrets.kv.v1.read_secret(path=self.path, mount_point=self.mount_point)
        finally:
            client.token = ""


def _classify(exc: Exception) -> float | None:
    """Worth another read? ``None`` = no; else the Retry-After (or -1 without one)."""
    if isinstance(exc, TransientVaultError):
        return NO_RETRY_AFTER
    if isinstance(exc, VaultHTTPError) and exc.transient:
        return NO_RETRY_AFTER if exc.retry_after is None else exc.retry_after
    return None


_LIVE: weakref.WeakSet[VaultSource] = weakref.WeakSet()


def _reset_all_after_fork() -> None:
    for source in list(_LIVE):
        source._reset_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_all_after_fork)


def _check_url(url: str) -> str:
    if not url:
        raise ConfigError(
            f"no Vault address: pass url (settings: sources.vault.url) or set "
            f"{_environ.VAULT_ADDR}",
            key="url",
            owner="VaultSource",
        )
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"url must be http(s)://host[:port], got {url!r}", key="url", owner="VaultSource"
        )
    return url.rstrip("/")


def _check_segment(key: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip("/ "):
        raise ConfigError(
            f"{key} must be a non-empty path, got {value!r}", key=key, owner="VaultSource"
        )
    cleaned = value.strip("/ ")
    if ".." in cleaned.split("/"):
        raise ConfigError(
            f"{key} must not contain '..', got {value!r}", key=key, owner="VaultSource"
        )
    return cleaned


def from_options(options: SourceOptions) -> VaultSource:
    """Build a VaultSource from a ``[<env>.sources.vault]`` settings table.

    Keys: ``url`` (default ``VAULT_ADDR``), ``mount_point`` (``secret``), ``path``
    (``n3xt/api``), ``kv_version`` (2), ``version``, ``namespace`` (default
    ``VAULT_NAMESPACE``), ``client_id_key``, ``client_secret_key``, ``verify``,
    ``ca_cert``, ``client_cert``, ``client_key``, ``timeout`` (5 s); the retry policy
    ``max_attempts`` (4), ``base_delay`` (0.2 s), ``max_delay`` (2 s), ``deadline``
    (15 s); ``auth_method`` (``token`` | ``approle`` | ``kubernetes``) and its keys:
    ``token_var`` and ``token_file`` (token: the variable, default ``VAULT_TOKEN``,
    then the file, default ``~/.vault-token`` — a Vault Agent sink), ``role_id``,
    ``role_id_var``, ``secret_id_var``, ``secret_id_file``, ``approle_mount``
    (approle), ``role``, ``jwt_file``, ``kubernetes_mount`` (kubernetes).

    A ``token`` or ``secret_id`` key is refused: secrets never live in settings.
    Keys of an auth method other than ``auth_method`` are accepted and ignored, so
    ``[default]`` can configure AppRole while ``[development]`` switches to token.
    """
    options.not_secret("token")
    options.not_secret("secret_id")
    auth_method = options.get_str(
        "auth_method", "token", choices=("token", "approle", "kubernetes")
    )
    token_var = options.get_str("token_var", _environ.VAULT_TOKEN)
    token_file = options.get_str("token_file", None)
    role_id = options.get_str("role_id", None)
    role_id_var = options.get_str("role_id_var", _environ.VAULT_ROLE_ID)
    secret_id_var = options.get_str("secret_id_var", _environ.VAULT_SECRET_ID)
    secret_id_file = options.get_str("secret_id_file", None)
    approle_mount = options.get_str("approle_mount", "approle")
    role = options.get_str("role", None)
    jwt_file = options.get_str("jwt_file", DEFAULT_KUBERNETES_JWT_FILE)
    kubernetes_mount = options.get_str("kubernetes_mount", "kubernetes")
    auth: AnyVaultAuth
    if auth_method == "approle":
        auth = VaultAppRoleAuth(
            role_id,
            role_id_var=role_id_var,
            secret_id_var=secret_id_var,
            secret_id_file=secret_id_file,
            mount=approle_mount,
        )
    elif auth_method == "kubernetes":
        if role is None:
            raise options.error("role", 'is required when auth_method = "kubernetes"')
        auth = VaultKubernetesAuth(role, jwt_file=jwt_file, mount=kubernetes_mount)
    else:
        auth = options.build(VaultTokenAuth, token_var=token_var, token_file=token_file)
    kwargs: dict[str, Any] = {
        "url": options.get_str("url", None),
        "mount_point": options.get_str("mount_point", "secret"),
        "path": options.get_str("path", "n3xt/api"),
        "kv_version": options.get_int("kv_version", 2, choices=(1, 2)),
        "namespace": options.get_str("namespace", None),
        "client_id_key": options.get_str("client_id_key", "client_id"),
        "client_secret_key": options.get_str("client_secret_key", "client_secret"),
        "version": options.get_int("version", None, positive=True),
        "verify": options.get_bool("verify", True),
        "ca_cert": options.get_str("ca_cert", None),
        "client_cert": options.get_str("client_cert", None),
        "client_key": options.get_str("client_key", None),
        "timeout": options.get_float("timeout", 5.0, positive=True),
        "retry": retry_from_options(options, DEFAULT_RETRY),
    }
    options.finish()
    # VAULT_ADDR, VAULT_TOKEN and friends are read from the environment the settings
    # were read from (an application or a test may have injected one).
    return options.build(VaultSource, auth=auth, environ=options.environ, **kwargs)
