"""Secret never shows its value by accident."""

from __future__ import annotations

import copy
import logging
import pickle

import pytest

from n3xt_creds import Credentials, Secret

CANARY = "canary-Secret-3f9d7c1e-never-show"


def test_str_repr_format_hide_the_value() -> None:
    secret = Secret(CANARY)
    rendered = [
        str(secret),
        repr(secret),
        f"{secret}",
        f"{secret!r}",
        f"{secret:>40}",
        "%s" % secret,  # noqa: UP031 - the %-operator is what this test checks
        "%r" % (secret,),  # noqa: UP031
        "{}".format(secret),  # noqa: UP032
        str([secret]),
        str({"s": secret}),
    ]
    for text in rendered:
        assert CANARY not in text
        assert "*" in text


def test_get_secret_value_returns_the_value() -> None:
    assert Secret(CANARY).get_secret_value() == CANARY


def test_fingerprint_is_short_stable_and_distinguishes_secrets() -> None:
    a, b = Secret(CANARY), Secret(CANARY + "x")
    assert a.fingerprint == Secret(CANARY).fingerprint
    assert a.fingerprint != b.fingerprint
    assert len(a.fingerprint) == 8
    assert a.fingerprint in repr(a)
    int(a.fingerprint, 16)


def test_equality_compares_values_and_refuses_plain_strings() -> None:
    assert Secret(CANARY) == Secret(CANARY)
    assert Secret(CANARY) != Secret("other")
    assert Secret(CANARY) != CANARY  # a Secret is not a str
    assert hash(Secret(CANARY)) == hash(Secret(CANARY))


def test_equality_uses_constant_time_comparison(monkeypatch: pytest.MonkeyPatch) -> None:
    import hmac

    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert Secret("abc") == Secret("abc")
    assert len(calls) == 1


def test_pickle_is_refused_without_showing_the_value() -> None:
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        with pytest.raises(TypeError, match="refuses to be pickled") as info:
            pickle.dumps(Secret(CANARY), protocol=protocol)
        assert CANARY not in str(info.value)


def test_credentials_with_a_secret_cannot_be_pickled() -> None:
    with pytest.raises(TypeError):
        pickle.dumps(Credentials("id", Secret(CANARY)))


def test_copy_returns_the_same_immutable_object() -> None:
    secret = Secret(CANARY)
    assert copy.copy(secret) is secret
    assert copy.deepcopy(secret) is secret
    creds = Credentials("id", secret)
    assert copy.deepcopy(creds).client_secret.get_secret_value() == CANARY


def test_logging_shows_the_mask(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    logging.getLogger("n3xt_creds.test").debug("secret is %s / %r", Secret(CANARY), Secret(CANARY))
    assert CANARY not in caplog.text
    assert "**********" in caplog.text


def test_secret_rejects_non_strings_and_wraps_secrets() -> None:
    with pytest.raises(TypeError, match="wraps a str"):
        Secret(b"bytes")  # type: ignore[arg-type]
    assert Secret(Secret(CANARY)).get_secret_value() == CANARY  # type: ignore[arg-type]


def test_secret_has_no_instance_dict_to_leak_through() -> None:
    secret = Secret(CANARY)
    assert not hasattr(secret, "__dict__")
    assert CANARY not in str(vars(type(secret)))


def test_credentials_repr_hides_secret_and_wraps_plain_strings() -> None:
    creds = Credentials("my-client", CANARY)  # type: ignore[arg-type]
    assert isinstance(creds.client_secret, Secret)
    assert CANARY not in repr(creds)
    assert CANARY not in str(creds)
    assert "my-client" in repr(creds)
    assert creds == Credentials("my-client", Secret(CANARY), source="elsewhere")


def test_credentials_are_immutable_and_compare_without_source() -> None:
    creds = Credentials("id", Secret(CANARY), source="env:X")
    with pytest.raises(AttributeError, match="immutable"):
        creds.client_id = "other"  # type: ignore[misc]
    with pytest.raises(AttributeError, match="immutable"):
        del creds.source  # type: ignore[misc]
    assert creds == Credentials("id", CANARY, source="file:/x")  # type: ignore[arg-type]
    assert creds != Credentials("id", Secret("other"))
    assert hash(creds) == hash(Credentials("id", Secret(CANARY)))
    assert copy.copy(creds) is creds


def test_retry_policy_is_an_immutable_value() -> None:
    from n3xt_creds import RetryPolicy

    policy = RetryPolicy(max_attempts=3, deadline=5.0)
    assert policy == RetryPolicy(3, 0.1, 5.0, 5.0)
    assert policy != RetryPolicy()
    assert hash(policy) == hash(RetryPolicy(3, deadline=5.0))
    assert (
        repr(policy) == "RetryPolicy(max_attempts=3, base_delay=0.1, max_delay=5.0, deadline=5.0)"
    )
    with pytest.raises(AttributeError, match="immutable"):
        policy.max_attempts = 9  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(policy)) == policy
