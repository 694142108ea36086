"""Credential sources: where n3xt_creds reads the client_id / client_secret pair.

Each source lives in its own module. The Vault and AWS sources load on first use of
their names (their client libraries, hvac and boto3, even later: on first read).
"""

import importlib
from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


# Keep the namespace to the public API (checked by tests/foundation/test_public_api.py).
del TYPE_CHECKING, Any
