"""Credential sources: where n3xt_creds reads the client_id / client_secret pair.

Each source lives in its own module. The Vault and AWS sources load on first use of
their names (their client libraries, hvac and boto3, even later: on first read).
"""

from typing import TYPE_CHECKING

from .._lazy import attach
from .base import CredentialSource, describe_source
from .chain import ChainSource
from .env import EnvSource
from .file import FileSource

if TYPE_CHECKING:
    from .aws import AwsSecretsManagerSource
    from .vault import VaultSource

__all__ = [
    "AwsSecretsManagerSource",
    "ChainSource",
    "CredentialSource",
    "EnvSource",
    "FileSource",
    "VaultSource",
    "describe_source",
]

_LAZY = {"AwsSecretsManagerSource": ".aws", "VaultSource": ".vault"}


__getattr__, __dir__ = attach(__name__, _LAZY, globals(), __all__)


# Keep the namespace to the public API (checked by tests/foundation/test_public_api.py).
del TYPE_CHECKING, attach
