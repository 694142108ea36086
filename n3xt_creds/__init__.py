"""n3xt_creds: get applications safely and quickly authenticated to the N3XT payments API.

Credentials come from a pluggable source (environment variables, mounted files,
Vault, AWS Secrets Manager, or a chain of them); one :class:`Authenticator` turns
them into a cached, refreshed bearer token and puts it on any HTTP client's requests.
``from_settings()`` builds all of it from ``settings.toml``. See ``docs/``.

``import n3xt_creds`` stays cheap: the Vault and AWS sources and the settings
machinery (with dynaconf, hvac, boto3 behind them) load on first use of their names.
"""

from typing import TYPE_CHECKING

from ._core.retry import RetryPolicy
from ._core.stats import AuthenticatorStats, AuthEvent
from ._lazy import attach
from ._secret import Secret
from .authenticator import Authenticator
from .credentials import Credentials
from .errors import (
    AuthenticatorClosedError,
    ConfigError,
    CredentialsNotFoundError,
    InvalidClientError,
    N3XTCredsError,
    SourceError,
    TokenRequestError,
)
from .sources.base import CredentialSource
from .sources.chain import ChainSource
from .sources.env import EnvSource
from .sources.file import FileSource

if TYPE_CHECKING:
    from ._core.shared.coordinator import SharedCacheStats
    from ._core.shared.file import FileTokenCache
    from ._core.shared.redis import RedisTokenCache
    from .settings import from_dynaconf, from_settings
    from .sources.aws import AwsSecretsManagerSource
    from .sources.vault import VaultAppRoleAuth, VaultKubernetesAuth, VaultSource, VaultTokenAuth

__version__ = "0.1.0"

__all__ = [
    "AuthEvent",
    "Authenticator",
    "AuthenticatorClosedError",
    "AuthenticatorStats",
    "AwsSecretsManagerSource",
    "ChainSource",
    "ConfigError",
    "CredentialSource",
    "Credentials",
    "CredentialsNotFoundError",
    "EnvSource",
    "FileSource",
    "FileTokenCache",
    "InvalidClientError",
    "N3XTCredsError",
    "RedisTokenCache",
    "RetryPolicy",
    "Secret",
    "SharedCacheStats",
    "SourceError",
    "TokenRequestError",
    "VaultAppRoleAuth",
    "VaultKubernetesAuth",
    "VaultSource",
    "VaultTokenAuth",
    "__version__",
    "from_dynaconf",
    "from_settings",
]

# Public names whose modules load on first access (PEP 562): name -> module.
_LAZY = {
    "from_settings": ".settings",
    "from_dynaconf": ".settings",
    "AwsSecretsManagerSource": ".sources.aws",
    "FileTokenCache": "._core.shared.file",
    "SharedCacheStats": "._core.shared.coordinator",
    "RedisTokenCache": "._core.shared.redis",
    "VaultSource": ".sources.vault",
    "VaultTokenAuth": ".sources.vault",
    "VaultAppRoleAuth": ".sources.vault",
    "VaultKubernetesAuth": ".sources.vault",
}


__getattr__, __dir__ = attach(__name__, _LAZY, globals(), __all__, public_module=__name__)

# Exported names report the public path, as httpx's do: ``n3xt_creds.Authenticator``
# in reprs, tracebacks and docs, not the private module that defines it.
for _name in __all__:
    if _name in globals() and hasattr(globals()[_name], "__module__"):
        globals()[_name].__module__ = __name__


# Keep the namespace to the public API (checked by tests/foundation/test_public_api.py).
del TYPE_CHECKING, attach, _name
