"""What each of Vault's answers means for VaultSource, worded for the person on call.

Pure functions from an answer (or a failure) to Credentials or the error to raise.
Messages name the Vault address and the secret's path; they never contain a token,
a secret value or a body — only key names, statuses and Vault's own error strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..._secret import Secret
from ...credentials import Credentials
from ...errors import CredentialsNotFoundError, SourceError
from .._keys import key_hint
from ._http import TransientVaultError, VaultHTTPError

__all__ = ["SecretAddress", "credentials_from", "read_error", "unavailable_error"]


@dataclass(frozen=True)
class SecretAddress:
    """Where the secret lives: Vault address, mount, path, KV version, pinned version."""

    url: str
    mount_point: str
    path: str
    kv_version: int
    version: int | None

    @property
    def location(self) -> str:
        """``secret/n3xt/api`` (plus ``@v3`` when a version is pinned)."""
        pinned = f"@v{self.version}" if self.version is not None else ""
        return f"{self.mount_point}/{self.path}{pinned}"

    @property
    def api_path(self) -> str:
        """The path a Vault policy must grant: ``secret/data/n3xt/api`` for KV v2."""
        middle = "data/" if self.kv_version == 2 else ""
        return f"{self.mount_point}/{middle}{self.path}"


def unavailable_error(exc: BaseException, attempts: int, *, at: SecretAddress) -> SourceError:
    """The retryable SourceError once retries against a sick Vault are used up."""
    where = f"reading {at.location} from {at.url}"
    if isinstance(exc, TransientVaultError):
        problem = (
            f"Vault is unreachable ({exc}) after {attempts} attempts {where}; check url / "
            "VAULT_ADDR and that Vault is running and reachable from here"
        )
    elif isinstance(exc, VaultHTTPError) and exc.sealed:
        problem = (
            f"Vault is sealed (503) — still sealed after {attempts} attempts {where}; unseal "
            "it (bao operator unseal) or point url at an unsealed node"
        )
    elif isinstance(exc, VaultHTTPError) and exc.status_code == 429:
        wait = f", Retry-After {exc.retry_after:g}s" if exc.retry_after is not None else ""
        problem = (
            f"Vault is rate-limiting requests (429{wait}) {where}, gave up after {attempts} "
            f"attempts; a rate-limit quota covers this path: {exc.reason}"
        )
    elif isinstance(exc, VaultHTTPError):
        problem = f"Vault answered {exc.status_code} ({exc.reason}) {attempts} times {where}"
    else:
        problem = f"Vault failed ({type(exc).__name__}) {attempts} times {where}"
    return SourceError(f"vault: {problem}", source="vault", retryable=True)


def read_error(exc: VaultHTTPError, *, at: SecretAddress, auth_method: str) -> Exception:
    """The outcome of a non-transient HTTP error on the read itself."""
    where = f"vault {at.url}: {at.location}"
    if exc.status_code == 404:
        if any("no handler for route" in e for e in exc.errors):
            return SourceError(
                f"{where}: no secrets engine is mounted at {at.mount_point}/ "
                "(check mount_point and namespace)",
                source="vault",
            )
        return _not_found(exc, at=at)
    if exc.status_code == 403:
        hint = "; or the Vault token expired or was revoked" if auth_method == "token" else ""
        return SourceError(
            f"{where}: permission denied (403). Either the path is wrong — Vault answers 403, "
            f"not 404, for a path the token may not read: check mount_point, path, kv_version "
            f"and namespace — or the {auth_method} token's policy lacks "
            f'path "{at.api_path}" {{ capabilities = ["read"] }}{hint}',
            source="vault",
        )
    if exc.status_code == 400:
        hint = (
            "Vault refused the request as malformed: check kv_version (a KV v1 mount read as "
            "v2 or the reverse), version, and that path names a secret, not a folder"
        )
    elif exc.status_code in (401, 407):
        hint = "a proxy in front of Vault wants its own authentication: url may be the proxy's"
    else:
        hint = "Vault's server log and audit log for this request say why"
    return SourceError(
        f"{where}: Vault answered {exc.status_code} ({exc.reason}); {hint}", source="vault"
    )


def _not_found(exc: VaultHTTPError, *, at: SecretAddress) -> CredentialsNotFoundError:
    metadata: Any = None
    if isinstance(exc.body, Mapping) and isinstance(exc.body.get("data"), Mapping):
        metadata = exc.body["data"].get("metadata")
    which = f"version {at.version}" if at.version is not None else "the latest version"
    if isinstance(metadata, Mapping) and metadata.get("destroyed"):
        problem = f"{which} was destroyed (permanently); write a new version or pin another"
    elif isinstance(metadata, Mapping) and metadata.get("deletion_time"):
        problem = f"{which} was deleted; undelete it (bao kv undelete) or write a new version"
    elif at.version is not None:
        problem = f"version {at.version} does not exist"
    else:
        hint = "" if at.kv_version == 2 else " (is this really a KV v1 mount?)"
        problem = f"no secret at this path{hint}"
    return CredentialsNotFoundError(
        f"vault {at.url}: {at.location}: {problem}",
        source="vault",
        looked_for=(f"vault:{at.url}/v1/{at.api_path}",),
    )


def credentials_from(
    body: Any, *, at: SecretAddress, client_id_key: str, client_secret_key: str
) -> Credentials | SourceError:
    """Credentials from a successful read, or the SourceError naming the missing/bad key.

    The error is returned, not raised: the caller raises it from a frame that does not
    hold the answer, so the secret is not in the frame locals of the traceback.
    """
    data = body.get("data") if isinstance(body, Mapping) else None
    version = ""
    if at.kv_version == 2 and isinstance(data, Mapping):
        metadata = data.get("metadata")
        if isinstance(metadata, Mapping) and isinstance(metadata.get("version"), int):
            version = f"@v{metadata['version']}"
        data = data.get("data")
    where = f"vault {at.url}: {at.mount_point}/{at.path}{version}"
    if not isinstance(data, Mapping):
        return SourceError(f"{where}: the secret has no key/value data", source="vault")
    values: list[str] = []
    for key in (client_id_key, client_secret_key):
        if key not in data:
            return SourceError(
                f"{where}: the secret has no key `{key}`{key_hint(key, data)}; "
                "add it, or set client_id_key / client_secret_key",
                source="vault",
            )
        value = data[key]
        if not isinstance(value, str) or not value.strip():
            kind = (
                "an empty string" if isinstance(value, str) else f"of type {type(value).__name__}"
            )
            return SourceError(
                f"{where}: key `{key}` is {kind}, expected a non-empty string", source="vault"
            )
        values.append(value.strip())
    return Credentials(
        client_id=values[0],
        client_secret=Secret(values[1]),
        source=f"vault:{at.mount_point}/{at.path}{version}",
    )
