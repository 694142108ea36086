"""n3xt_creds: get applications safely and quickly authenticated to the N3XT payments API.

Credentials come from a pluggable source (environment variables, mounted files,
Vault, AWS Secrets Manager, or a chain of them); one :class:`Authenticator` turns
them into a cached, refreshed bearer token and puts it on any HTTP client's requests.
``from_settings()`` builds all of it from ``settings.toml``. See ``docs/``.

Heavy dependencies (dynaconf, hvac, boto3) are imported only when used.
"""

from ._secret import Secret
from ._stats import AuthenticatorStats, AuthEvent
from .authenticator import Authenticator
from .credentials import Credentials
from .errors import (
    ConfigError,
    CredentialsNotFoundError,
    InvalidClientError,
    N3XTCredsError,
    SourceError,
    TokenRequestError,
)
from .settings import from_settings
from .sources.aws import AwsSecretsManagerSource
from .sources.base import CredentialSource
from .sources.chain import ChainSource
from .sources.env import EnvSource
from .sources.file import FileSource
from .sources.vault import VaultSource

__version__ = "0.1.0"

__all__ = [
    "AuthEvent",
    "Authenticator",
    "AuthenticatorStats",
    "AwsSecretsManagerSource",
    "ChainSource",
    "ConfigError",
    "CredentialSource",
    "Credentials",
    "CredentialsNotFoundError",
    "EnvSource",
    "FileSource",
    "InvalidClientError",
    "N3XTCredsError",
    "Secret",
    "SourceError",
    "TokenRequestError",
    "VaultSource",
    "__version__",
    "from_settings",
]
