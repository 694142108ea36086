"""The token goes only to api_hosts (https) and loopback, and never follows a redirect
to another origin — checked with real redirects between two local servers."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import requests

from n3xt_creds import Authenticator, ConfigError
from n3xt_creds._core.hosts import HostAllowlist
from n3xt_creds.adapters.requests import RequestsAuth
from tests.authenticator._support import SwitchableSource


class Recorder(ThreadingHTTPServer):
    """Records the Authorization header of every request; /hop redirects to ``target``."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.seen: list[tuple[str, str | None]] = []
        self.target = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Recorder

    def do_GET(self) -> None:
        self.server.seen.append((self.path, self.headers.get("Authorization")))
        if self.path == "/hop":
            self.send_response(302)
            self.send_header("Location", self.server.target)
        else:
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[Recorder, Recorder]]:
    a, b = Recorder(), Recorder()
    threads = [threading.Thread(target=s.serve_forever, args=(0.05,), daemon=True) for s in (a, b)]
    for thread in threads:
        thread.start()
    yield a, b
    for server, thread in zip((a, b), threads, strict=True):
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def hop(servers: tuple[Recorder, Recorder]) -> tuple[Recorder, Recorder]:
    a, b = servers
    a.seen.clear()
    b.seen.clear()
    a.target = f"{b.url}/landing"  # another port: another origin
    return a, b


def assert_token_stayed_home(a: Recorder, b: Recorder, token: str) -> None:
    assert a.seen == [("/hop", f"Bearer {token}")]
    assert b.seen == [("/landing", None)]


def test_httpx_cross_origin_redirect_drops_the_token(
    hop: tuple[Recorder, Recorder], auth: Authenticator
) -> None:
    a, b = hop
    with httpx.Client(auth=auth, follow_redirects=True) as client:
        assert client.get(f"{a.url}/hop").status_code == 200
    assert_token_stayed_home(a, b, auth.get_token())


async def test_httpx_async_cross_origin_redirect_drops_the_token(
    hop: tuple[Recorder, Recorder], auth: Authenticator
) -> None:
    a, b = hop
    async with httpx.AsyncClient(auth=auth, follow_redirects=True) as client:
        assert (await client.get(f"{a.url}/hop")).status_code == 200
    assert_token_stayed_home(a, b, await auth.aget_token())


def test_requests_cross_origin_redirect_drops_the_token(
    hop: tuple[Recorder, Recorder], auth: Authenticator
) -> None:
    a, b = hop
    with requests.Session() as session:
        session.auth = RequestsAuth(auth)
        assert session.get(f"{a.url}/hop", timeout=5).status_code == 200
    assert_token_stayed_home(a, b, auth.get_token())


def test_same_origin_redirect_keeps_the_token(
    hop: tuple[Recorder, Recorder], auth: Authenticator
) -> None:
    # The control case: shows the servers would have seen a header had it been sent.
    a, _ = hop
    a.target = f"{a.url}/landing"
    with httpx.Client(auth=auth, follow_redirects=True) as client:
        client.get(f"{a.url}/hop")
    assert [header for _, header in a.seen] == [f"Bearer {auth.get_token()}"] * 2


def test_requests_to_other_hosts_pass_through_with_one_warning(
    auth: Authenticator, caplog: pytest.LogCaptureFixture
) -> None:
    # MockTransport stands in for hosts we cannot run locally (public https names).
    seen: list[tuple[str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers.get("Authorization")))
        return httpx.Response(200)

    urls = [
        "https://api.n3xt.io/v1/pay",
        "https://eu.api.n3xt.io/v1/pay",
        "https://evil.example.com/steal",
        "https://evil.example.com/again",
        "http://api.n3xt.io/v1/plain",
        "https://n3xt.io.evil.example.com/",
    ]
    with caplog.at_level(logging.WARNING, logger="n3xt_creds"):
        with httpx.Client(auth=auth, transport=httpx.MockTransport(handler)) as client:
            for url in urls:
                client.get(url)
    bearer = f"Bearer {auth.get_token()}"
    assert [header for _, header in seen] == [bearer, bearer, None, None, None, None]
    warnings = [r.getMessage() for r in caplog.records if "Not sending" in r.getMessage()]
    assert len(warnings) == 3  # one per refused host, not per request
    assert any("plain http" in w for w in warnings)
    assert auth.get_token() not in caplog.text


def test_requests_adapter_skips_other_hosts(auth: Authenticator) -> None:
    request = requests.Request("GET", "https://evil.example.com/").prepare()
    assert "Authorization" not in RequestsAuth(auth)(request).headers
    request = requests.Request("GET", "https://api.n3xt.io/").prepare()
    assert RequestsAuth(auth)(request).headers["Authorization"].startswith("Bearer ")


@pytest.mark.parametrize(
    ("scheme", "host", "allowed"),
    [
        ("https", "api.n3xt.io", True),
        ("https", "a.b.n3xt.io", True),
        ("https", "API.N3XT.IO", True),
        ("https", "api.n3xt.io.", True),  # the same absolute name
        ("https", "n3xt.io", False),  # *.n3xt.io means subdomains
        ("https", "eviln3xt.io", False),
        ("https", "payments.example.com", True),  # exact entry
        ("https", "x.payments.example.com", False),
        ("http", "api.n3xt.io", False),
        ("https", "api.n3xt.io.evil.com", False),
        ("http", "127.0.0.1", False),  # loopback only when listed or token_url is loopback
        ("http", "localhost", False),
        ("https", "localhost", False),
        ("http", "::1", False),
        ("http", "10.0.0.1", False),
        ("ws", "api.n3xt.io", False),
    ],
)
def test_allowlist_decisions(scheme: str, host: str, allowed: bool) -> None:
    allowlist = HostAllowlist(["*.n3xt.io", "payments.example.com"])
    assert allowlist.allows(scheme, host) is allowed


@pytest.mark.parametrize(
    ("scheme", "host", "allowed"),
    [
        ("http", "127.0.0.1", True),
        ("http", "127.9.9.9", True),
        ("http", "localhost", True),
        ("https", "LOCALHOST", True),
        ("http", "::1", True),
        ("http", "localhost.", False),  # resolved through DNS: not loopback
        ("https", "localhost.", False),
        ("http", "10.0.0.1", False),
    ],
)
def test_loopback_allowed_when_the_token_endpoint_is_loopback(
    scheme: str, host: str, allowed: bool
) -> None:
    allowlist = HostAllowlist(["*.n3xt.io"], loopback=True)
    assert allowlist.allows(scheme, host) is allowed


@pytest.mark.parametrize(
    ("scheme", "host", "allowed"),
    [
        ("http", "localhost", True),
        ("http", "::1", True),
        ("http", "127.0.0.1", False),  # not listed
        ("http", "localhost.", False),
    ],
)
def test_listed_loopback_hosts_only(scheme: str, host: str, allowed: bool) -> None:
    allowlist = HostAllowlist(["*.n3xt.io", "localhost", "[::1]"])
    assert allowlist.allows(scheme, host) is allowed


@pytest.mark.parametrize(
    ("pattern", "intended"),
    [
        ("*", "'*.n3xt.io'"),
        ("*n3xt.io", "'*.n3xt.io'"),
        ("*.com", "'*.example.com'"),
        ("*.co.uk", "'*.example.co.uk'"),
        ("*.github.io", "'*.example.github.io'"),
        ("*.io", "'*.example.io'"),
        ("*.s3.amazonaws.com", "'*.example.s3.amazonaws.com'"),
        ("api-*n3xt.io", "'*.n3xt.io'"),
    ],
)
def test_over_broad_patterns_are_refused_with_the_intended_form(
    pattern: str, intended: str
) -> None:
    with pytest.raises(ConfigError) as info:
        HostAllowlist([pattern])
    assert info.value.key == "api_hosts"
    assert "matches too much" in str(info.value)
    assert intended in str(info.value)


@pytest.mark.parametrize("pattern", ["*.n3xt.io", "api-*.n3xt.io", "*.pay.example.co.uk"])
def test_narrow_patterns_are_accepted(pattern: str) -> None:
    assert HostAllowlist([pattern]).patterns == (pattern,)


def test_warned_hosts_are_bounded(caplog: pytest.LogCaptureFixture) -> None:
    allowlist = HostAllowlist(["*.n3xt.io"])
    with caplog.at_level(logging.ERROR, logger="n3xt_creds"):  # the warnings are not the point
        for i in range(5000):
            allowlist.allows("https", f"h{i}.example.com")
    assert len(allowlist._warned) <= 1024
    assert len(allowlist._decisions) <= 1024


def test_a_sidecar_on_localhost_never_gets_a_production_token(
    source: SwitchableSource, caplog: pytest.LogCaptureFixture
) -> None:
    # token_url is not loopback: a request to a loopback sidecar goes out without the token.
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Authorization"))
        return httpx.Response(200)

    auth = Authenticator(source, token_url="https://authn.alpha.n3xt.io/v1/public/p/oauth2/token")
    with caplog.at_level(logging.WARNING, logger="n3xt_creds"):
        with httpx.Client(auth=auth, transport=httpx.MockTransport(handler)) as client:
            client.get("http://localhost:3500/v1.0/invoke")
            client.get("http://127.0.0.1:3500/v1.0/invoke")
    auth.close()
    assert seen == [None, None]
    assert source.reads == 0  # no token was even fetched
    assert "when api_hosts lists it" in caplog.text


def test_a_trailing_dot_localhost_token_url_is_not_loopback(source: SwitchableSource) -> None:
    # "localhost." is resolved through DNS: plain http there would cross the network.
    with pytest.raises(ConfigError, match="must use https"):
        Authenticator(source, token_url="http://localhost./v1/public/p/oauth2/token")
