"""Entries: keyed by a hash that hides the client, sealed so the store alone reveals nothing."""

from __future__ import annotations

import pytest

from n3xt_creds import Credentials, Secret
from n3xt_creds._core.shared.base import EntryKey, EntryProblem, entry_key, open_entry, seal_entry
from n3xt_creds._core.token import Token

URL = "https://authn.alpha.n3xt.io/v1/public/p/oauth2/token"
CREDS = Credentials("client-visible-id", Secret("canary-secret-Zq7xW3vR9pLk2Hn5"))


def _token(obtained_at: float = 100.0, expires_in: float = 600.0) -> Token:
    return Token(
        "tok-123", expires_in=expires_in, obtained_at=obtained_at, refresh_margin=60, request_id="r"
    )


def _key(creds: Credentials = CREDS, url: str = URL) -> EntryKey:
    return entry_key(url, creds)


def test_a_sealed_entry_opens_on_another_clock_with_the_same_absolute_expiry() -> None:
    key = _key()
    # Written 10 s after the token was obtained (monotonic 100 -> 110, wall 5010).
    entry = seal_entry(key, _token(), now=110.0, wall_now=5010.0)
    assert b"tok-123" not in entry
    # Read on a host whose monotonic clock reads 7000, 30 s of wall time later.
    sealed = open_entry(key, entry, now=7000.0, wall_now=5040.0, refresh_margin=60)
    assert sealed.token.value() == "tok-123"
    assert sealed.token.obtained_at == pytest.approx(7000.0 - 40.0)
    assert sealed.token.expires_at == pytest.approx(7000.0 - 40.0 + 600.0)
    assert sealed.token.request_id == "r"


def test_the_expiry_inside_the_entry_rules() -> None:
    key = _key()
    entry = seal_entry(key, _token(), now=100.0, wall_now=5000.0)
    with pytest.raises(EntryProblem) as problem:
        open_entry(key, entry, now=0.0, wall_now=5600.0, refresh_margin=60)
    assert problem.value.condition == "entry_expired"


def test_a_writer_whose_clock_runs_ahead_counts_as_just_now() -> None:
    key = _key()
    entry = seal_entry(key, _token(), now=100.0, wall_now=5000.0)
    sealed = open_entry(key, entry, now=50.0, wall_now=4990.0, refresh_margin=60)
    assert sealed.token.obtained_at == 50.0  # never a lifetime longer than the token's


def test_the_key_hides_the_client_and_changes_with_the_secret() -> None:
    key = _key()
    assert "client-visible-id" not in key.name
    assert "canary" not in repr(key)
    rotated = _key(Credentials("client-visible-id", Secret("another-secret")))
    assert rotated.name != key.name
    assert _key(url=URL.replace("/p/", "/q/")).name != key.name
    assert _key().name == key.name  # every process computes the same name


def test_another_secret_cannot_read_or_plant_an_entry() -> None:
    mine = _key()
    theirs = _key(Credentials("client-visible-id", Secret("not-the-secret")))
    planted = seal_entry(theirs, _token(), now=100.0, wall_now=5000.0)
    with pytest.raises(EntryProblem) as problem:
        open_entry(mine, planted, now=100.0, wall_now=5000.0, refresh_margin=60)
    assert problem.value.condition == "entry_foreign"


def test_an_entry_moved_under_another_key_does_not_open() -> None:
    url_b = URL.replace("/p/", "/b/")
    entry = seal_entry(_key(url=url_b), _token(), now=100.0, wall_now=5000.0)
    with pytest.raises(EntryProblem):
        open_entry(_key(), entry, now=100.0, wall_now=5000.0, refresh_margin=60)


@pytest.mark.parametrize(
    "garbage", [b"", b"garbage", b"N3C1" + b"\0" * 40, b"N3C1" + b"x" * 20_000]
)
def test_garbage_is_an_entry_problem_not_a_crash(garbage: bytes) -> None:
    with pytest.raises(EntryProblem):
        open_entry(_key(), garbage, now=0.0, wall_now=0.0, refresh_margin=60)


def test_a_sealed_entry_with_a_bad_payload_is_garbage() -> None:
    key = _key()
    with pytest.raises(EntryProblem) as problem:
        open_entry(key, key.seal(b'{"access_token": 5}'), now=0.0, wall_now=0.0, refresh_margin=1)
    assert problem.value.condition == "entry_garbage"
