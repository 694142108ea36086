"""Placeholder being replaced by its owner in this session; not part of any release."""

from __future__ import annotations

from typing import Any


class AwsSecretsManagerSource:
    """Not implemented yet."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("AwsSecretsManagerSource is being written")
