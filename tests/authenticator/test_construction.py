"""Construction-time validation, repr, pickling: bad input fails early and clearly."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import httpx
import pytest

from n3xt_creds import Authenticator, ConfigError, Credentials
from n3xt_creds._core.retry import RetryPolicy
from tests.authenticator._support import CANARY_SECRET, SwitchableSource

HTTPS_URL = "https://authn.alpha.n3xt.io/v1/public/p/oauth2/token"


@pytest.fixture
def src() -> SwitchableSource:
    return SwitchableSource(Credentials("id", CANARY_SECRET))


@pytest.mark.parametrize(
    "url",
    [
        HTTPS_URL,
        "http://127.0.0.1:8080/token",
        "http://127.5.6.7/token",
        "http://localhost:1/token",
        "http://[::1]:9/token",
    ],
)
def test_https_or_loopback_token_urls_are_accepted(src: SwitchableSource, url: str) -> None:
    with Authenticator(src, token_url=url) as auth:
        assert auth.token_url.startswith(url.split(":", maxsplit=1)[0])


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://authn.alpha.n3xt.io/token", "plain http"),
        ("http://10.0.0.1/token", "plain http"),
        ("ftp://authn.alpha.n3xt.io/token", "https URL"),
        ("", "token_url"),
        ("not a url", "https URL"),
        ("https://user:pw@authn.alpha.n3xt.io/token", "user name or password"),
    ],
)
def test_unsafe_or_malformed_token_urls_are_refused(
    src: SwitchableSource, url: str, words: str
) -> None:
    with pytest.raises(ConfigError, match=words) as info:
        Authenticator(src, token_url=url)
    assert info.value.key == "token_url"
    assert "pw" not in str(info.value) or "password" in str(info.value)


@pytest.mark.parametrize("name", ["refresh_margin", "timeout"])
@pytest.mark.parametrize("value", [0, -1, float("nan"), float("inf"), "10", True])
def test_margins_and_timeouts_must_be_positive_numbers(
    src: SwitchableSource, name: str, value: Any
) -> None:
    with pytest.raises(ConfigError, match=name) as info:
        Authenticator(src, token_url=HTTPS_URL, **{name: value})
    assert info.value.key == name


@pytest.mark.parametrize(
    ("hosts", "words"),
    [
        ("*.n3xt.io", "not a single string"),
        (["*"], "matches too much"),
        (["*.io"], "matches too much"),
        (["https://api.n3xt.io"], "without scheme"),
        (["api.n3xt.io/v1"], "without scheme"),
        ([""], "not a host name pattern"),
        ([42], "must be strings"),
    ],
)
def test_bad_api_hosts_are_refused(src: SwitchableSource, hosts: Any, words: str) -> None:
    with pytest.raises(ConfigError, match=words) as info:
        Authenticator(src, token_url=HTTPS_URL, api_hosts=hosts)
    assert info.value.key == "api_hosts"


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"retry": {"max_attempts": 3}}, "retry"),
        ({"clock": 12.0}, "clock"),
        ({"http_client": object()}, "http_client"),
        ({"async_http_client": httpx.Client}, "async_http_client"),
    ],
)
def test_wrongly_typed_options_are_refused(
    src: SwitchableSource, kwargs: dict[str, Any], key: str
) -> None:
    with pytest.raises(ConfigError) as info:
        Authenticator(src, token_url=HTTPS_URL, **kwargs)
    assert info.value.key == key


def test_a_source_without_get_credentials_is_refused() -> None:
    with pytest.raises(ConfigError, match="get_credentials") as info:
        Authenticator(object(), token_url=HTTPS_URL)  # type: ignore[arg-type]
    assert info.value.key == "source"


def test_retry_policy_is_taken_as_given(src: SwitchableSource) -> None:
    policy = RetryPolicy(max_attempts=2)
    with Authenticator(src, token_url=HTTPS_URL, retry=policy) as auth:
        assert auth.retry is policy


def test_repr_names_url_source_and_phase_without_a_token(src: SwitchableSource) -> None:
    with Authenticator(src, token_url=HTTPS_URL) as auth:
        text = repr(auth)
    assert HTTPS_URL in text
    assert "switchable test source" in text
    assert "phase=None" in text
    assert CANARY_SECRET not in text


def test_pickling_and_copying_are_refused_with_a_clear_message(src: SwitchableSource) -> None:
    with Authenticator(src, token_url=HTTPS_URL) as auth:
        with pytest.raises(TypeError, match="refuses to be pickled"):
            pickle.dumps(auth)
        with pytest.raises(TypeError, match="refuses to be pickled"):
            copy.copy(auth)


def test_it_is_an_httpx_auth(src: SwitchableSource) -> None:
    with Authenticator(src, token_url=HTTPS_URL) as auth:
        assert isinstance(auth, httpx.Auth)
