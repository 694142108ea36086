"""The token endpoint and the protected API follow N3XT's documented contract."""

from __future__ import annotations

import json

import httpx
import pytest

from n3xt_creds.testing import Emulator

from .conftest import GrantFn, grant_body

ERROR_KEYS = {"status_code", "request_id", "error", "error_description"}


def assert_error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == ERROR_KEYS
    assert body["status_code"] == status
    assert body["error"] == error
    assert body["request_id"] == response.headers["x-request-id"]
    assert body["request_id"].startswith("request-id-")


def test_success_body_has_exactly_the_documented_keys(
    n3xt_emulator: Emulator, grant: GrantFn
) -> None:
    response = grant(n3xt_emulator.add_client())

    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["status_code", "expires_in", "request_id", "access_token", "token_type"]
    assert body["status_code"] == 200
    assert body["expires_in"] == 3600
    assert body["token_type"] == "bearer"
    assert body["request_id"] == response.headers["x-request-id"]
    assert isinstance(body["access_token"], str)
    assert len(body["access_token"]) >= 32


def test_every_token_is_new(n3xt_emulator: Emulator, grant: GrantFn) -> None:
    creds = n3xt_emulator.add_client()
    tokens = {grant(creds).json()["access_token"] for _ in range(5)}
    assert len(tokens) == 5
    assert n3xt_emulator.tokens_issued == 5


def test_any_project_id_is_served(n3xt_emulator: Emulator, http: httpx.Client) -> None:
    creds = n3xt_emulator.add_client()
    response = http.post(n3xt_emulator.token_url("project-test-84ff27dd"), json=grant_body(creds))
    assert response.status_code == 200


def test_content_type_must_be_json(n3xt_emulator: Emulator, http: httpx.Client) -> None:
    creds = n3xt_emulator.add_client()
    form = http.post(n3xt_emulator.token_url(), data=grant_body(creds))
    raw = http.post(n3xt_emulator.token_url(), content=json.dumps(grant_body(creds)))

    assert_error(form, 415, "invalid_request")
    assert_error(raw, 415, "invalid_request")
    assert n3xt_emulator.counters.token_requests == {"unsupported_media_type": 2}


def test_content_type_parameters_are_accepted(n3xt_emulator: Emulator, http: httpx.Client) -> None:
    creds = n3xt_emulator.add_client()
    response = http.post(
        n3xt_emulator.token_url(),
        content=json.dumps(grant_body(creds)),
        headers={"Content-Type": "Application/JSON; charset=utf-8"},
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"{not json", "invalid_request"),
        (b"[1, 2]", "invalid_request"),
        (b"", "invalid_request"),
        (b'{"client_id": "a", "client_secret": "b"}', "invalid_request"),
        (b'{"client_id": "a", "grant_type": "client_credentials"}', "invalid_request"),
        (b'{"client_secret": "b", "grant_type": "client_credentials"}', "invalid_request"),
        (
            b'{"client_id": "", "client_secret": "b", "grant_type": "client_credentials"}',
            "invalid_request",
        ),
        (
            b'{"client_id": 7, "client_secret": "b", "grant_type": "client_credentials"}',
            "invalid_request",
        ),
        (
            b'{"client_id": "a", "client_secret": "b", "grant_type": "password"}',
            "unsupported_grant_type",
        ),
    ],
)
def test_malformed_requests_get_400(
    n3xt_emulator: Emulator, http: httpx.Client, content: bytes, error: str
) -> None:
    response = http.post(
        n3xt_emulator.token_url(), content=content, headers={"Content-Type": "application/json"}
    )
    assert_error(response, 400, error)
    assert n3xt_emulator.counters.token_requests == {error: 1}


def test_missing_fields_are_named(n3xt_emulator: Emulator, http: httpx.Client) -> None:
    response = http.post(n3xt_emulator.token_url(), json={"client_id": "a"})
    assert "client_secret" in response.json()["error_description"]
    assert "grant_type" in response.json()["error_description"]


def test_unknown_client_and_wrong_secret_get_401(
    n3xt_emulator: Emulator, http: httpx.Client
) -> None:
    creds = n3xt_emulator.add_client()
    wrong_secret = {**grant_body(creds), "client_secret": "not-the-secret"}
    unknown = {**grant_body(creds), "client_id": "nobody"}

    assert_error(http.post(n3xt_emulator.token_url(), json=wrong_secret), 401, "invalid_client")
    assert_error(http.post(n3xt_emulator.token_url(), json=unknown), 401, "invalid_client")
    assert n3xt_emulator.counters.token_requests == {"invalid_client": 2}
    assert n3xt_emulator.tokens_issued == 0


def test_get_on_token_url_is_405(n3xt_emulator: Emulator, http: httpx.Client) -> None:
    response = http.get(n3xt_emulator.token_url())
    assert_error(response, 405, "invalid_request")
    assert response.headers["allow"] == "POST"


def test_unknown_path_is_404_json(n3xt_emulator: Emulator, http: httpx.Client) -> None:
    assert_error(http.get(f"{n3xt_emulator.url}/v1/nothing"), 404, "not_found")


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_api_accepts_a_valid_token_for_any_method(
    n3xt_emulator: Emulator, http: httpx.Client, token: str, method: str
) -> None:
    response = http.request(
        method,
        n3xt_emulator.api_url("/v1/payments?limit=1"),
        headers={"Authorization": f"Bearer {token}"},
        content=b'{"amount": 1}',
    )
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True
    assert body["method"] == method
    assert body["path"] == "/v1/payments"
    assert body["client_id"] == n3xt_emulator.client_ids[0]


def test_api_head_has_no_body(n3xt_emulator: Emulator, http: httpx.Client, token: str) -> None:
    response = http.head(n3xt_emulator.api_url(), headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.content == b""


def test_api_without_token_is_401_without_error_code(
    n3xt_emulator: Emulator, http: httpx.Client
) -> None:
    response = http.get(n3xt_emulator.api_url())
    assert_error(response, 401, "invalid_token")
    assert response.headers["www-authenticate"] == 'Bearer realm="n3xt-emulator"'
    assert n3xt_emulator.counters.api_calls == {"missing_token": 1}


@pytest.mark.parametrize(
    "authorization", ["Bearer not-a-token", "Basic dXNlcjpwYXNz", "not-a-token"]
)
def test_api_with_bad_token_is_401_invalid_token(
    n3xt_emulator: Emulator, http: httpx.Client, authorization: str
) -> None:
    response = http.get(n3xt_emulator.api_url(), headers={"Authorization": authorization})
    assert_error(response, 401, "invalid_token")
    assert response.headers["www-authenticate"].startswith("Bearer ")


def test_unknown_token_challenge_says_invalid_token(
    n3xt_emulator: Emulator, http: httpx.Client
) -> None:
    response = http.get(n3xt_emulator.api_url(), headers={"Authorization": "Bearer nope"})
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_keep_alive_serves_many_requests_on_one_connection(
    n3xt_emulator: Emulator, grant: GrantFn
) -> None:
    creds = n3xt_emulator.add_client()
    local_ports = set()
    for _ in range(20):
        response = grant(creds)
        assert response.status_code == 200
        assert response.headers.get("connection") != "close"
        local_ports.add(response.extensions["network_stream"].get_extra_info("client_addr")[1])
    assert len(local_ports) == 1


def test_unknown_http_method_gets_a_json_501(n3xt_emulator: Emulator, http: httpx.Client) -> None:
    response = http.request("BREW", n3xt_emulator.token_url())
    assert response.status_code == 501
    assert response.json()["status_code"] == 501
    assert response.json()["request_id"] == response.headers["x-request-id"]


def test_oversized_body_gets_413(n3xt_emulator: Emulator, http: httpx.Client) -> None:
    response = http.post(
        n3xt_emulator.token_url(),
        content=b"x" * (64 * 1024 + 1),
        headers={"Content-Type": "application/json"},
    )
    assert_error(response, 413, "invalid_request")
