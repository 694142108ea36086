"""The front door: __all__ is exactly the public API, documented, and cheap to import."""

from __future__ import annotations

import json
import subprocess
import sys
import types

import n3xt_creds

HEAVY_MODULES = (
    "asyncio",  # async callers load it on first use (n3xt_creds._core.aio)
    "boto3",
    "botocore",
    "hvac",
    "dynaconf",
    "requests",
    "importlib.metadata",
    "opentelemetry",
    "redis",
    "cryptography",
)


def test_all_lists_every_public_name_and_nothing_else() -> None:
    public = {
        name
        for name in dir(n3xt_creds)
        if not name.startswith("_") and not isinstance(getattr(n3xt_creds, name), types.ModuleType)
    }
    assert public | {"__version__"} == set(n3xt_creds.__all__)


def test_lazy_names_resolve_to_their_modules_objects() -> None:
    from n3xt_creds.settings import from_settings
    from n3xt_creds.sources.aws import AwsSecretsManagerSource
    from n3xt_creds.sources.vault import VaultSource

    assert n3xt_creds.from_settings is from_settings
    assert n3xt_creds.VaultSource is VaultSource
    assert n3xt_creds.AwsSecretsManagerSource is AwsSecretsManagerSource
    assert n3xt_creds.sources.VaultSource is VaultSource


def test_unknown_attribute_is_an_attribute_error() -> None:
    import pytest

    with pytest.raises(AttributeError, match="no_such_name"):
        n3xt_creds.no_such_name  # type: ignore[attr-defined]  # noqa: B018


def test_all_is_sorted_and_every_name_resolves() -> None:
    assert n3xt_creds.__all__ == sorted(n3xt_creds.__all__)
    for name in n3xt_creds.__all__:
        assert getattr(n3xt_creds, name) is not None, name


def test_every_public_name_has_a_docstring() -> None:
    for name in n3xt_creds.__all__:
        if name == "__version__":
            continue
        doc = getattr(n3xt_creds, name).__doc__
        assert doc, f"n3xt_creds.{name} has no docstring"
        assert "Placeholder" not in doc and "Not implemented" not in doc, name


def test_pinned_names_from_the_design_exist() -> None:
    pinned = {
        "Authenticator",
        "EnvSource",
        "FileSource",
        "VaultSource",
        "AwsSecretsManagerSource",
        "ChainSource",
        "Credentials",
        "Secret",
        "from_settings",
        "N3XTCredsError",
        "ConfigError",
        "CredentialsNotFoundError",
        "SourceError",
        "TokenRequestError",
        "InvalidClientError",
    }
    assert pinned <= set(n3xt_creds.__all__)


def test_error_tree_matches_the_design() -> None:
    e = n3xt_creds
    for cls in (e.ConfigError, e.CredentialsNotFoundError, e.SourceError, e.TokenRequestError):
        assert issubclass(cls, e.N3XTCredsError)
    assert issubclass(e.InvalidClientError, e.TokenRequestError)


def test_import_does_not_load_heavy_dependencies() -> None:
    code = (
        "import sys, json, n3xt_creds;"
        f"print(json.dumps(sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_testing_helpers_are_public() -> None:
    from n3xt_creds import testing

    assert hasattr(testing, "Emulator")


def test_every_exported_name_reports_the_public_module() -> None:
    """Reprs, tracebacks and docs show ``n3xt_creds.X``, never the private module."""
    wrong = {
        name: getattr(n3xt_creds, name).__module__
        for name in n3xt_creds.__all__
        if not name.startswith("__") and getattr(n3xt_creds, name).__module__ != "n3xt_creds"
    }
    assert wrong == {}
