"""Credential sources: where n3xt_creds reads the client_id / client_secret pair.

Each source lives in its own module; backends with heavy client libraries (hvac,
boto3) import them only when first used.
"""

from __future__ import annotations

from .base import CredentialSource, describe_source
from .chain import ChainSource
from .env import EnvSource
from .file import FileSource

__all__ = ["ChainSource", "CredentialSource", "EnvSource", "FileSource", "describe_source"]
