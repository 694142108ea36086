"""VaultSource: no token or secret reachable from its errors, escaped Vault words, bounded
answers, the core's Retry-After (HTTP-date included), no pickle. Real OpenBao where it
can produce the case; a stub server for shapes OpenBao never answers with.
"""

from __future__ import annotations

import email.utils
import gzip
import json
import logging
import os
import pickle
import threading
import time
import tracemalloc
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from n3xt_creds import CredentialsNotFoundError, RetryPolicy, SourceError
from n3xt_creds.sources.options import SourceOptions
from n3xt_creds.sources.vault import VaultAppRoleAuth, VaultTokenAuth, from_options
from tests.sources._secrecy import assert_nothing_reachable, debug_logging, raised
from tests.sources.vault._support import RecordingSleep, StubServer, free_port, kv2_body

CANARY = "canary-vault-3c7e-never-show"
# A value pasted into a key's name: hex, as a generated secret looks.
KEY_LIKE_SECRET = "9f8e7d6c5b4a39281706f5e4d3c2b1a0"


def test_unreachable_vault_keeps_no_request_and_no_token_in_the_error(make_source) -> None:
    """The token sat at err.__context__.__context__.request.headers["X-Vault-Token"]."""
    token = f"hvs.{CANARY}"
    source = make_source(
        f"http://127.0.0.1:{free_port()}",
        auth=VaultTokenAuth(token),
        retry=RetryPolicy(max_attempts=2),
        sleep=RecordingSleep(),
    )
    error = raised(source.get_credentials)
    assert isinstance(error, SourceError) and error.retryable
    assert error.__context__ is None and error.__cause__ is None
    assert_nothing_reachable(error, token)


@pytest.mark.parametrize(
    "secret",
    [
        {"client_id": "client-abc", "clientsecret": CANARY},
        {"client_id": "client-abc", "client_secret": {"nested": CANARY}},
        {"client_id": "client-abc", "client_secret": ""},
        {"client_id": "client-abc", KEY_LIKE_SECRET: CANARY},
        {"client_id": {"value": CANARY}, "client_secret": CANARY},
    ],
    ids=["misspelt-key", "not-a-string", "empty", "key-name-is-a-secret", "bad-client-id"],
)
def test_a_malformed_secret_is_in_no_frame_local_and_no_message(make_source, vault, secret) -> None:
    path = vault.new_path()
    vault.put(path, secret)
    source = make_source(vault.url, path=path, auth=VaultTokenAuth(vault.root_token))
    error = raised(source.get_credentials)
    assert isinstance(error, SourceError)
    assert_nothing_reachable(error, CANARY, KEY_LIKE_SECRET, vault.root_token)


def test_key_names_that_may_be_secrets_are_counted_not_shown(make_source, vault) -> None:
    path = vault.new_path()
    vault.put(path, {"client_id": "client-abc", KEY_LIKE_SECRET: "x"})
    source = make_source(vault.url, path=path, auth=VaultTokenAuth(vault.root_token))
    with pytest.raises(SourceError, match=r"it has 2 key\(s\); their names are not shown"):
        source.get_credentials()


def test_rejected_approle_login_keeps_the_secret_id_out_of_every_frame(make_source, vault) -> None:
    role_id, _ = vault.approle()
    wrong_secret_id = f"{CANARY}-0000"
    source = make_source(
        vault.url,
        auth=VaultAppRoleAuth(role_id),
        environ={"VAULT_SECRET_ID": wrong_secret_id},
    )
    error = raised(source.get_credentials)
    assert isinstance(error, SourceError)
    assert "400" in str(error) and "role_id or the secret_id is wrong" in str(error)
    assert_nothing_reachable(error, wrong_secret_id)


def test_approle_login_at_a_mount_nothing_serves_says_so(make_source, vault) -> None:
    role_id, secret_id = vault.approle()
    source = make_source(
        vault.url,
        auth=VaultAppRoleAuth(role_id, mount="no-such-approle"),
        environ={"VAULT_SECRET_ID": secret_id},
    )
    with pytest.raises(
        SourceError, match="is the approle auth method enabled at the mount `no-such-approle`"
    ):
        source.get_credentials()


def test_a_404_on_login_says_the_address_is_not_vault(make_source) -> None:
    def respond(method, path, headers):
        return 404, {"Content-Type": "text/html"}, b"<html>Not Found</html>"

    with StubServer(respond) as stub:
        source = make_source(
            stub.url, auth=VaultAppRoleAuth("role-1"), environ={"VAULT_SECRET_ID": "sid"}
        )
        with pytest.raises(SourceError, match="probably points at another server"):
            source.get_credentials()


def test_vault_error_strings_are_escaped(make_source) -> None:
    forged = "denied\r\n2026-01-01 INFO n3xt_creds: all good\x1b[2J"

    def respond(method, path, headers):
        return 400, {"Content-Type": "application/json"}, json.dumps({"errors": [forged]}).encode()

    with StubServer(respond) as stub:
        source = make_source(stub.url, auth=VaultTokenAuth("stub-token"), environ={})
        error = raised(source.get_credentials)
    message = str(error)
    assert "denied\\r\\n2026-01-01" in message
    assert not any(c in message for c in "\r\n\x1b")


def test_a_retry_after_http_date_is_honoured(make_source) -> None:
    """Measured against the answer's own Date header (the stub's, from its clock)."""
    answers = iter([503])

    def respond(method, path, headers):
        if next(answers, 200) == 503:
            retry_at = email.utils.formatdate(time.time() + 3, usegmt=True)
            headers = {"Content-Type": "application/json", "Retry-After": retry_at}
            return 503, headers, b'{"errors":["overloaded"]}'
        pair = {"client_id": "a", "client_secret": "b"}
        return 200, {"Content-Type": "application/json"}, kv2_body(pair)

    sleep = RecordingSleep()
    with StubServer(respond) as stub:
        source = make_source(stub.url, auth=VaultTokenAuth("stub-token"), sleep=sleep, environ={})
        assert source.get_credentials().client_id == "a"
    assert len(sleep.delays) == 1
    assert 2.0 <= sleep.delays[0] <= 3.0  # whole seconds on both stamps


class _Flood:
    """A server that answers 200 with an endless chunked body (or a gzip bomb)."""

    def __init__(self, *, gzip_bomb: bool = False) -> None:
        self.sent = 0
        flood = self
        # 16 MiB of JSON in 16 KiB of gzip, made before the test measures memory.
        bomb = gzip.compress(b'{"data": "' + b"0" * (16 * 1024 * 1024) + b'"}')

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                if gzip_bomb:
                    self.send_header("Content-Encoding", "gzip")
                    self.send_header("Content-Length", str(len(bomb)))
                    self.end_headers()
                    self.wfile.write(bomb)
                    return
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                chunk = b"0" * 65536
                try:
                    while flood.sent < 256 * 1024 * 1024:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        flood.sent += len(chunk)
                except OSError:
                    return  # the client hung up: what we want

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # the client hanging up mid-answer is the point of these tests

        self._server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> _Flood:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.mark.parametrize("gzip_bomb", [False, True], ids=["endless-body", "gzip-bomb"])
def test_the_answer_cap_is_enforced_while_reading(make_source, gzip_bomb) -> None:
    with _Flood(gzip_bomb=gzip_bomb) as flood:
        source = make_source(flood.url, auth=VaultTokenAuth("stub-token"), environ={})
        tracemalloc.start()
        try:
            error = raised(source.get_credentials)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        source.close()
    assert isinstance(error, SourceError)
    assert "was refused" in str(error) and "1024 KiB" in str(error)
    assert peak < 8 * 1024 * 1024, f"reading the answer took {peak / 2**20:.0f} MiB"
    if not gzip_bomb:
        assert flood.sent < 32 * 1024 * 1024  # we hung up, we did not drain it


def test_token_file_key_reads_a_vault_agent_sink(vault, tmp_path: Path) -> None:
    sink = tmp_path / "agent-token"
    sink.write_text(vault.root_token + "\n")
    path = vault.new_path()
    vault.put(path, {"client_id": "client-abc", "client_secret": CANARY})
    options = SourceOptions(
        {"url": vault.url, "path": path, "token_file": str(sink)},
        prefix="sources.vault",
        environ={},
    )
    source = from_options(options)
    try:
        assert source.get_credentials().client_id == "client-abc"
        assert str(sink) in source.describe()
    finally:
        source.close()


def test_a_fifo_as_token_file_is_refused_without_blocking(make_source, tmp_path: Path) -> None:
    fifo = tmp_path / "agent-token"
    os.mkfifo(fifo)
    source = make_source(
        f"http://127.0.0.1:{free_port()}", auth=VaultTokenAuth(token_file=fifo), environ={}
    )
    with pytest.raises(SourceError, match="is a FIFO"):
        source.get_credentials()


def test_vault_source_refuses_pickling(make_source, vault) -> None:
    source = make_source(vault.url, auth=VaultTokenAuth(vault.root_token))
    with pytest.raises(TypeError, match="VaultSource refuses to be pickled"):
        pickle.dumps(source)


def test_missing_secret_is_still_not_found(make_source, vault) -> None:
    """The outcome-as-value refactoring keeps 'nothing here' distinct from 'failed'."""
    source = make_source(vault.url, path=vault.new_path(), auth=VaultTokenAuth(vault.root_token))
    with pytest.raises(CredentialsNotFoundError):
        source.get_credentials()


@pytest.mark.parametrize(
    "auth",
    [
        VaultTokenAuth(token_file="/nonexistent/token"),
        VaultAppRoleAuth("role-1"),
        VaultAppRoleAuth(role_id_var="NO_SUCH_VAR"),
        VaultAppRoleAuth("role-1", secret_id_file="/nonexistent/secret-id"),
    ],
    ids=["no-token", "no-secret-id", "no-role-id", "no-secret-id-file"],
)
def test_missing_login_inputs_keep_the_environment_out_of_the_error(make_source, auth) -> None:
    """Each error names what is missing; the process environment is in no frame local."""
    environ = {"N3XT_CLIENT_SECRET": CANARY, "VAULT_ROLE_ID": "role-1"}
    source = make_source(f"http://127.0.0.1:{free_port()}", auth=auth, environ=environ)
    error = raised(source.get_credentials)
    assert isinstance(error, SourceError) and not error.retryable
    assert_nothing_reachable(error, CANARY)


def test_the_raw_token_is_not_left_on_the_hvac_client_between_reads(make_source, vault) -> None:
    """Between reads the token is a Secret (masked in any repr), not a str on the client."""
    path = vault.new_path()
    vault.put(path, {"client_id": "client-abc", "client_secret": CANARY})
    source = make_source(vault.url, path=path, auth=VaultTokenAuth(vault.root_token))
    assert source.get_credentials().client_id == "client-abc"
    assert source._client.adapter.token == ""


def test_every_logger_at_debug_records_no_secret_and_no_token(make_source, vault) -> None:
    """AppRole login (secret_id, token in the answer), a read (the secret), a renewal."""
    role_id, secret_id = vault.approle()
    path = vault.new_path()
    vault.put(path, {"client_id": "client-abc", "client_secret": CANARY})
    source = make_source(
        vault.url, path=path, auth=VaultAppRoleAuth(role_id), environ={"VAULT_SECRET_ID": secret_id}
    )
    with debug_logging() as records:
        assert source.get_credentials().client_secret.get_secret_value() == CANARY
    assert records.lines, "DEBUG logging was not on"
    token = source._keeper._lease.token.get_secret_value()
    leaked = [line for line in records.lines if any(s in line for s in (CANARY, secret_id, token))]
    assert leaked == []


def test_bounded_reads_keep_the_connection_alive(make_source, vault, caplog) -> None:
    """Reading answers in chunks (for the cap) still hands the connection back to the pool."""
    path = vault.new_path()
    vault.put(path, {"client_id": "client-abc", "client_secret": CANARY})
    source = make_source(vault.url, path=path, auth=VaultTokenAuth(vault.root_token))
    caplog.set_level(logging.DEBUG, logger="urllib3.connectionpool")
    for _ in range(3):
        assert source.get_credentials().client_id == "client-abc"
    opened = [r for r in caplog.records if "Starting new HTTP" in r.getMessage()]
    assert len(opened) == 1


def test_a_login_answer_with_a_garbled_lease_still_works(make_source) -> None:
    """float("soon") used to raise a ValueError from the frame holding the raw token."""

    def respond(method, path, headers):
        if path.endswith("/login"):
            auth = {"client_token": f"tok-{CANARY}", "lease_duration": "soon", "renewable": True}
            return 200, {"Content-Type": "application/json"}, json.dumps({"auth": auth}).encode()
        pair = {"client_id": "a", "client_secret": "b"}
        return 200, {"Content-Type": "application/json"}, kv2_body(pair)

    with StubServer(respond) as stub:
        source = make_source(
            stub.url, auth=VaultAppRoleAuth("role-1"), environ={"VAULT_SECRET_ID": "sid"}
        )
        assert source.get_credentials().client_id == "a"
        assert stub.requests[-1][2]["X-Vault-Token"] == f"tok-{CANARY}"
