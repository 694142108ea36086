"""How VaultSource gets a Vault token: token, AppRole and Kubernetes auth, and renewal.

The three public auth classes only say *how* to obtain a token. :class:`TokenKeeper`
owns the token's life: it logs in when there is no token, renews a renewable token
once two thirds of its TTL have passed, and logs in again when the token cannot be
renewed, when a renewal comes back capped (the token is reaching its ``max_ttl``) or
when Vault stops accepting it. Every Vault token is held as a :class:`~n3xt_creds.Secret`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ... import _environ
from ..._core.arguments import non_empty_str
from ..._secret import Secret
from ..._text import escape_controls
from ...errors import ConfigError, SourceError
from .._files import read_small_file
from ._http import VaultHTTPError

__all__ = [
    "DEFAULT_KUBERNETES_JWT_FILE",
    "TokenKeeper",
    "VaultAppRoleAuth",
    "VaultKubernetesAuth",
    "VaultTokenAuth",
]

_log = logging.getLogger("n3xt_creds")

#: Where Kubernetes mounts the pod's service-account token (it is rotated in place).
DEFAULT_KUBERNETES_JWT_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token"
_VAULT_TOKEN_FILE = "~/.vault-token"


# Vault itself answers 403, not 404, for a login path nothing serves: a 404 comes from
# something else at that address.
_NOT_VAULT = (
    "Vault answers 403, not 404, for a login path nothing serves: url / VAULT_ADDR "
    "probably points at another server (a proxy, a web server, a wrong port or path "
    "prefix), not at Vault's API"
)


def _mount(owner: str, value: object) -> str:
    return non_empty_str("mount", value, owner=owner).strip("/")


class VaultTokenAuth:
    """Use an existing Vault token (no login).

    The token comes from, in order: the ``token`` argument; the ``VAULT_TOKEN``
    variable (``token_var``); the file ``~/.vault-token`` (``token_file``), which
    ``bao login``/``vault login`` and Vault Agent's file sink write. Variable and
    file are read at every credentials read, so a token refreshed by an agent is
    picked up. Such a token is not renewed by n3xt_creds (its owner renews it);
    when Vault rejects it, the source raises :class:`~n3xt_creds.SourceError`.
    """

    method = "token"

    def __init__(
        self,
        token: str | Secret | None = None,
        *,
        token_var: str = _environ.VAULT_TOKEN,
        token_file: str | os.PathLike[str] | None = None,
    ) -> None:
        self._token = token if isinstance(token, Secret) or token is None else Secret(token)
        if self._token is not None and not self._token.get_secret_value().strip():
            raise ConfigError("token is empty", key="token", owner="VaultTokenAuth")
        self.token_var = non_empty_str("token_var", token_var, owner="VaultTokenAuth")
        self.token_file = str(token_file) if token_file is not None else _VAULT_TOKEN_FILE

    def describe(self) -> str:
        """Say where the token comes from (never the token)."""
        if self._token is not None:
            return "token (given to VaultTokenAuth)"
        return f"token (from {self.token_var}, else {self.token_file})"

    def __repr__(self) -> str:
        return f"VaultTokenAuth({self.describe()!r})"

    def resolve(self, environ: Mapping[str, str]) -> Secret:
        """The token to use now; SourceError naming every place looked when there is none."""
        outcome = self._find(environ)
        del environ  # the whole environment must not sit in the traceback's frame locals
        if isinstance(outcome, Secret):
            return outcome
        raise SourceError(outcome, source="vault")

    def _find(self, environ: Mapping[str, str]) -> Secret | str:
        if self._token is not None:
            return self._token
        value = environ.get(self.token_var, "").strip()
        if value:
            return Secret(value)
        path = Path(self.token_file)
        if self.token_file.startswith("~"):
            home = environ.get("HOME")
            path = Path(home) / self.token_file[2:] if home else path.expanduser()
        if os.path.lexists(path):
            return read_small_file(
                path, label=f"vault token auth: Vault token file {path}", source="vault"
            )
        return (
            f"vault token auth: no Vault token: {self.token_var} is not set and {path} does "
            "not exist. Export the token, run `bao login` (or `vault login`), or use "
            "auth_method = approle / kubernetes (or set token_file to Vault Agent's sink)"
        )


class VaultAppRoleAuth:
    """Log in with AppRole: a ``role_id`` (not secret) and a ``secret_id`` (secret).

    ``role_id`` is given directly or read from the variable ``role_id_var``
    (default ``VAULT_ROLE_ID``). The ``secret_id`` is read at every login from the
    file ``secret_id_file`` when set, else from the variable ``secret_id_var``
    (default ``VAULT_SECRET_ID``) — never from settings and never kept beyond the
    login. ``mount`` is the auth mount path (default ``approle``).
    """

    method = "approle"

    def __init__(
        self,
        role_id: str | None = None,
        *,
        role_id_var: str = _environ.VAULT_ROLE_ID,
        secret_id_var: str = _environ.VAULT_SECRET_ID,
        secret_id_file: str | os.PathLike[str] | None = None,
        mount: str = "approle",
    ) -> None:
        owner = "VaultAppRoleAuth"
        self.role_id = non_empty_str("role_id", role_id, owner=owner) if role_id else None
        self.role_id_var = non_empty_str("role_id_var", role_id_var, owner=owner)
        self.secret_id_var = non_empty_str("secret_id_var", secret_id_var, owner=owner)
        self.secret_id_file = Path(secret_id_file) if secret_id_file is not None else None
        self.mount = _mount(owner, mount)

    def _secret_id_origin(self) -> str:
        return f"file {self.secret_id_file}" if self.secret_id_file else self.secret_id_var

    def describe(self) -> str:
        """Say where role_id and secret_id come from, and the mount."""
        role = f"role_id {self.role_id}" if self.role_id else f"role_id from {self.role_id_var}"
        return f"approle ({role}, secret_id from {self._secret_id_origin()}, mount {self.mount})"

    def __repr__(self) -> str:
        return f"VaultAppRoleAuth({self.describe()!r})"

    def login(self, client: Any, environ: Mapping[str, str]) -> Mapping[str, Any]:
        """POST auth/<mount>/login; return Vault's ``auth`` block."""
        role_id = self.role_id or environ.get(self.role_id_var, "").strip()
        from_variable = (
            None
            if self.secret_id_file is not None
            else Secret(environ.get(self.secret_id_var, "").strip())
        )
        del environ  # the whole environment must not sit in the traceback's frame locals
        if not role_id:
            raise SourceError(
                f"vault approle: no role_id: set `role_id` or the variable {self.role_id_var}",
                source="vault",
            )
        if self.secret_id_file is not None:
            secret_id = read_small_file(
                self.secret_id_file,
                label=f"vault approle: secret_id file {self.secret_id_file}",
                source="vault",
            )
        elif from_variable:
            secret_id = from_variable
        else:
            raise SourceError(
                f"vault approle: no secret_id: the variable {self.secret_id_var} is not set "
                "(or use secret_id_file)",
                source="vault",
            )
        rejected: VaultHTTPError | None = None
        try:
            body = client.auth.approle.login(
                role_id=role_id,
                secret_id=secret_id.get_secret_value(),
                use_token=False,
                mount_point=self.mount,
            )
        except VaultHTTPError as exc:
            if exc.transient:
                raise
            rejected = exc.with_traceback(None)
        if rejected is not None:
            raise SourceError(self._rejection(rejected, role_id), source="vault")
        return _auth_block(body, self.method)

    def _rejection(self, exc: VaultHTTPError, role_id: str) -> str:
        """Why Vault refused this login, by cause, with the next step for each."""
        what = (
            f"vault approle: login with role_id {escape_controls(role_id, 80)} at "
            f"auth/{self.mount}/login was rejected ({exc.status_code}: {exc.reason})"
        )
        if exc.status_code == 400:
            return (
                f"{what}. Vault says the role_id or the secret_id is wrong: check that role_id "
                f"(or {self.role_id_var}) is this role's id (bao read "
                f"auth/{self.mount}/role/<role>/role-id), and that the secret_id from "
                f"{self._secret_id_origin()} is current — an expired, used-up or revoked "
                f"secret_id needs a new one (bao write -f auth/{self.mount}/role/<role>/secret-id)"
            )
        if exc.status_code == 403:
            return (
                f"{what}. Vault answers 403 to a login path no auth method serves: is the "
                f"approle auth method enabled at the mount `{self.mount}` (bao auth list; set "
                "approle_mount), in this namespace? If it is, the role's secret_id_bound_cidrs "
                "or token_bound_cidrs may exclude this host's address"
            )
        if exc.status_code in (404, 405):
            return f"{what}. {_NOT_VAULT}"
        return (
            f"{what}. Check the role's settings (bao read auth/{self.mount}/role/<role>) "
            "and Vault's audit log for this request"
        )


class VaultKubernetesAuth:
    """Log in with Kubernetes auth: a Vault ``role`` and the pod's service-account JWT.

    The JWT file (default ``/var/run/secrets/kubernetes.io/serviceaccount/token``)
    is read again at every login, because the kubelet rotates projected tokens in
    place. ``mount`` is the auth mount path (default ``kubernetes``).
    """

    method = "kubernetes"

    def __init__(
        self,
        role: str,
        *,
        jwt_file: str | os.PathLike[str] = DEFAULT_KUBERNETES_JWT_FILE,
        mount: str = "kubernetes",
    ) -> None:
        self.role = non_empty_str("role", role, owner="VaultKubernetesAuth")
        self.jwt_file = Path(jwt_file)
        self.mount = _mount("VaultKubernetesAuth", mount)

    def describe(self) -> str:
        """Say which role, JWT file and mount are used."""
        return f"kubernetes (role {self.role}, jwt {self.jwt_file}, mount {self.mount})"

    def __repr__(self) -> str:
        return f"VaultKubernetesAuth({self.describe()!r})"

    def login(self, client: Any, environ: Mapping[str, str]) -> Mapping[str, Any]:
        """POST auth/<mount>/login with the JWT read now; return Vault's ``auth`` block."""
        del environ  # not needed; and it must not sit in the traceback's frame locals
        jwt = read_small_file(
            self.jwt_file,
            label=f"vault kubernetes auth: service-account JWT file {self.jwt_file}",
            source="vault",
        )
        rejected: VaultHTTPError | None = None
        try:
            body = client.auth.kubernetes.login(
                role=self.role, jwt=jwt.get_secret_value(), use_token=False, mount_point=self.mount
            )
        except VaultHTTPError as exc:
            if exc.transient:
                raise
            rejected = exc.with_traceback(None)
        if rejected is not None:
            raise SourceError(self._rejection(rejected), source="vault")
        return _auth_block(body, self.method)

    def _rejection(self, exc: VaultHTTPError) -> str:
        what = (
            f"vault kubernetes auth: login as role {self.role} at auth/{self.mount}/login was "
            f"rejected ({exc.status_code}: {exc.reason})"
        )
        if exc.status_code == 403 and exc.errors == ["permission denied"]:
            return (
                f"{what}. Vault answers 403 to a login path no auth method serves: is the "
                f"kubernetes auth method enabled at the mount `{self.mount}` (bao auth list; "
                "set kubernetes_mount), in this namespace?"
            )
        if exc.status_code in (404, 405):
            return f"{what}. {_NOT_VAULT}"
        if exc.status_code == 403:
            return (
                f"{what}. The role `{self.role}` does not bind this pod's service account "
                f"or namespace (bao read auth/{self.mount}/role/{self.role}: "
                "bound_service_account_names / _namespaces), or Kubernetes' TokenReview "
                f"refused {self.jwt_file} (is it the pod's current token?)"
            )
        return (
            f"{what}. Check that the role `{self.role}` exists (bao read "
            f"auth/{self.mount}/role/{self.role}) and that {self.jwt_file} holds a "
            "service-account JWT"
        )


def _auth_block(body: Any, method: str) -> Mapping[str, Any]:
    auth = body.get("auth") if isinstance(body, Mapping) else None
    if not isinstance(auth, Mapping) or not isinstance(auth.get("client_token"), str):
        raise SourceError(
            f"vault {method}: the login answer carried no client token; is url / VAULT_ADDR "
            "Vault's API itself (not a proxy answering 200 with a page of its own)?",
            source="vault",
        )
    return auth


@dataclass
class _Lease:
    """A token obtained by login, and the clock readings that govern its renewal."""

    token: Secret
    obtained_at: float
    ttl: float  # seconds; 0 means the token does not expire
    renewable: bool
    login_ttl: float  # the TTL the login granted: what each renewal asks for again

    def expired(self, now: float) -> bool:
        # A few seconds' margin so a token is not sent in its very last moments.
        return bool(self.ttl) and now >= self.obtained_at + self.ttl - min(5.0, self.ttl * 0.1)

    def due_for_renewal(self, now: float) -> bool:
        return bool(self.ttl) and now >= self.obtained_at + self.ttl * 2 / 3


def _seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return float(value) if 0 <= value < float("inf") else 0.0


def _lease_from(auth: Mapping[str, Any], now: float, login_ttl: float | None = None) -> _Lease:
    # Never raise here: this frame holds the raw token. A lease_duration that is not a
    # number of seconds counts as "no expiry"; a 403 on the next read logs in again.
    ttl = _seconds(auth.get("lease_duration"))
    return _Lease(
        token=Secret(str(auth["client_token"])),
        obtained_at=now,
        ttl=ttl,
        renewable=bool(auth.get("renewable")),
        login_ttl=ttl if login_ttl is None else login_ttl,
    )


class TokenKeeper:
    """Hands out a usable Vault token for each read, logging in and renewing as needed.

    Not thread-safe on its own: VaultSource calls it under its lock. ``clock`` is a
    monotonic clock in seconds (injected so tests can move time without sleeping).
    """

    def __init__(
        self,
        auth: VaultTokenAuth | VaultAppRoleAuth | VaultKubernetesAuth,
        *,
        environ: Mapping[str, str],
        clock: Callable[[], float],
    ) -> None:
        self.auth = auth
        self._environ = environ
        self._clock = clock
        self._lease: _Lease | None = None

    @property
    def can_login(self) -> bool:
        """True when a rejected token can be replaced by logging in again."""
        return not isinstance(self.auth, VaultTokenAuth)

    def forget(self) -> None:
        """Drop the login token (Vault said it is no longer valid)."""
        self._lease = None

    def token(self, client: Any) -> Secret:
        """A token valid now: the current one, a renewed one, or a fresh login."""
        if isinstance(self.auth, VaultTokenAuth):
            return self.auth.resolve(self._environ)
        now = self._clock()
        lease = self._lease
        if lease is not None and not lease.expired(now):
            if not lease.due_for_renewal(now):
                return lease.token
            if lease.renewable and self._renew(client, lease, now):
                return lease.token
        return self._login(client)

    def _login(self, client: Any) -> Secret:
        self._lease = None
        auth = self.auth
        assert not isinstance(auth, VaultTokenAuth)
        block = auth.login(client, self._environ)
        self._lease = lease = _lease_from(block, self._clock())
        _log.debug(
            "vault: logged in with %s (token ttl %gs, %s)",
            auth.describe(),
            lease.ttl,
            "renewable" if lease.renewable else "not renewable",
        )
        return lease.token

    def _renew(self, client: Any, lease: _Lease, now: float) -> bool:
        """Renew in place; False when a fresh login is needed instead."""
        client.token = lease.token.get_secret_value()
        try:
            body = client.auth.token.renew_self(increment=int(lease.login_ttl))
        except VaultHTTPError as exc:
            if exc.transient:
                raise
            # Revoked, expired or not renewable after all: log in again.
            _log.debug("vault: token renewal refused (%s); logging in again", exc.status_code)
            return False
        finally:
            client.token = ""  # held as a Secret by the lease, not as a string on the client
        auth = body.get("auth") if isinstance(body, Mapping) else None
        if not isinstance(auth, Mapping):
            return False
        renewed = _lease_from({**auth, "client_token": lease.token.get_secret_value()}, now)
        if renewed.ttl < lease.login_ttl:
            # Capped by max_ttl: this token is near its end, replace it.
            _log.debug(
                "vault: token renewal capped at %gs (max_ttl); logging in again", renewed.ttl
            )
            return False
        renewed.login_ttl = lease.login_ttl
        self._lease = renewed
        _log.debug("vault: token renewed for %gs", renewed.ttl)
        return True
