"""ChainSource: first source with credentials wins; failures stop; history is reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from n3xt_creds import (
    ChainSource,
    ConfigError,
    Credentials,
    CredentialsNotFoundError,
    EnvSource,
    FileSource,
    Secret,
    SourceError,
)

CANARY = "canary-chain-77aa-never-show"


class Counting:
    """A real, minimal source that counts its reads."""

    def __init__(self, result: Credentials | Exception) -> None:
        self.result = result
        self.calls = 0

    def get_credentials(self) -> Credentials:
        self.calls += 1
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


def test_first_source_with_credentials_wins(tmp_path: Path) -> None:
    (tmp_path / "client_id").write_text("from-file")
    (tmp_path / "client_secret").write_text(CANARY)
    env = EnvSource(environ={})
    files = FileSource(tmp_path)
    chain = ChainSource([env, files])
    assert chain.get_credentials().client_id == "from-file"
    assert chain.last_source is files


def test_later_sources_are_not_read_once_one_answers() -> None:
    first = Counting(Credentials("a", Secret("s")))
    second = Counting(Credentials("b", Secret("s")))
    assert ChainSource([first, second]).get_credentials().client_id == "a"
    assert second.calls == 0


def test_source_error_stops_the_chain() -> None:
    broken = EnvSource(environ={"N3XT_CLIENT_ID": "only-id"})
    fallback = Counting(Credentials("b", Secret("s")))
    with pytest.raises(SourceError, match="N3XT_CLIENT_SECRET is not"):
        ChainSource([broken, fallback]).get_credentials()
    assert fallback.calls == 0


def test_nothing_found_lists_every_source_and_what_it_looked_for(tmp_path: Path) -> None:
    chain = ChainSource([EnvSource(environ={}), FileSource(tmp_path / "secrets")])
    with pytest.raises(CredentialsNotFoundError) as info:
        chain.get_credentials()
    message = str(info.value)
    assert "tried 2" in message
    assert "1. env (variables N3XT_CLIENT_ID, N3XT_CLIENT_SECRET)" in message
    assert f"2. file ({tmp_path / 'secrets' / 'client_id'}" in message
    assert info.value.looked_for == (
        "N3XT_CLIENT_ID",
        "N3XT_CLIENT_SECRET",
        str(tmp_path / "secrets" / "client_id"),
        str(tmp_path / "secrets" / "client_secret"),
    )
    assert len(info.value.attempts) == 2
    assert all(isinstance(a, CredentialsNotFoundError) for a in info.value.attempts)


def test_nested_chains_report_inner_sources(tmp_path: Path) -> None:
    inner = ChainSource([EnvSource("A_ID", "A_SECRET", environ={})])
    chain = ChainSource([inner, FileSource(tmp_path)])
    with pytest.raises(CredentialsNotFoundError) as info:
        chain.get_credentials()
    assert "A_ID" in str(info.value)
    assert "A_ID" in info.value.looked_for


def test_empty_chain_and_non_sources_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="at least one source"):
        ChainSource([])
    with pytest.raises(ConfigError, match="is not a credential source"):
        ChainSource(["env"])  # type: ignore[list-item]


def test_describe_lists_sources(tmp_path: Path) -> None:
    chain = ChainSource([EnvSource(environ={}), FileSource(tmp_path)])
    assert chain.describe().startswith("chain [env (variables")
