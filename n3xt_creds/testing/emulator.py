"""Emulator: a local, in-process stand-in for N3XT's token endpoint and API.

A real HTTP server on 127.0.0.1 that speaks N3XT's documented client-credentials
contract, plus controls a test uses to shape it: clients, token lifetime, latency,
revocation, queued faults and counters. Standard library only, so it tests the client
code without depending on it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType

from .._secret import Secret
from ..credentials import Credentials
from ._faults import Fault
from ._handler import COUNTERS_PATH, EmulatorRequestHandler
from ._server import EmulatorHTTPServer
from ._state import Counters, EmulatorState

__all__ = ["Emulator"]


class Emulator:
    """N3XT's token endpoint and a protected API, served locally for tests and development.

    ::

        with Emulator() as em:
            creds = em.add_client()
            httpx.post(em.token_url(), json={"client_id": creds.client_id,
                       "client_secret": creds.client_secret.get_secret_value(),
                       "grant_type": "client_credentials"})

    ``port=0`` picks a free port; read it back from :attr:`url`. Every control is
    thread-safe and takes effect for the next request. ``hang_timeout`` bounds how long
    a :attr:`Fault.HANG` (or a paused request) holds its connection when the client does
    not give up first; :meth:`stop` cuts such requests loose at once. ``clock`` (monotonic
    seconds) decides token expiry, so a test can move time instead of sleeping.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        expires_in: int = 3600,
        latency: float = 0.0,
        project: str = "project-test",
        *,
        hang_timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not project or "/" in project:
            raise ValueError(f"project must be a non-empty id without '/', got {project!r}")
        if hang_timeout <= 0:
            raise ValueError(f"hang_timeout must be > 0 seconds, got {hang_timeout!r}")
        self.host = host
        self.port = port
        self.project = project
        self.hang_timeout = hang_timeout
        self._state = EmulatorState(expires_in=expires_in, latency=latency, clock=clock)
        self._server: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lifecycle = threading.Lock()

    # --- lifecycle ------------------------------------------------------------------

    def start(self) -> Emulator:
        """Bind the port and serve in a background thread; return ``self``."""
        with self._lifecycle:
            if self._server is not None:
                raise RuntimeError(f"{self!r} is already running")
            server = EmulatorHTTPServer(
                (self.host, self.port),
                EmulatorRequestHandler,
                state=self._state,
                hang_timeout=self.hang_timeout,
            )
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"n3xt-emulator:{server.server_address[1]}",
                daemon=True,
            )
            thread.start()
            self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        """Stop serving and close every connection, hanging ones included. Idempotent."""
        with self._lifecycle:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None:
            return
        server.close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._server is not None

    # --- addresses ------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321``."""
        server = self._server
        if server is None:
            raise RuntimeError("the emulator is not running: call start() or use 'with'")
        host, port = server.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        return f"http://{host}:{port}"

    def token_url(self, project: str | None = None) -> str:
        """The token endpoint URL for ``project`` (default: this emulator's project)."""
        return f"{self.url}/v1/public/{project or self.project}/oauth2/token"

    def api_url(self, path: str = "/v1/ping") -> str:
        """A URL of the protected stand-in API (any method; needs a valid bearer token)."""
        return f"{self.api_base_url}{path if path.startswith('/') else '/' + path}"

    @property
    def counters_url(self) -> str:
        """``GET`` it for :attr:`counters` as JSON (``token_requests``, ``api_calls``,
        their totals, ``max_in_flight``, ``in_flight``): for multi-process tests whose
        emulator runs in another process (``n3xt-creds emulator``)."""
        return f"{self.url}{COUNTERS_PATH}"

    @property
    def api_base_url(self) -> str:
        """The stand-in API's base URL (``http://127.0.0.1:54321/api``): what an app
        configures as its N3XT API base, e.g. ``httpx.Client(base_url=...)``."""
        return f"{self.url}/api"

    def environ(
        self, credentials: Credentials | None = None, *, project: str | None = None
    ) -> dict[str, str]:
        """The variables an app reads in production, pointing at this emulator.

        ``N3XT_CLIENT_ID`` / ``N3XT_CLIENT_SECRET`` (a new client unless ``credentials``
        is given), ``N3XT_CREDS_TOKEN_URL`` and ``N3XT_CREDS_SOURCE=env``: with them, an
        unchanged ``n3xt_creds.from_settings()`` or ``from_dynaconf()`` authenticates
        here. Merge them into a subprocess's environment, or use the ``n3xt_app_env``
        fixture, which also clears the developer's own ``N3XT_CREDS_*`` choices.
        """
        creds = credentials if credentials is not None else self.add_client()
        return {
            "N3XT_CLIENT_ID": creds.client_id,
            "N3XT_CLIENT_SECRET": creds.client_secret.get_secret_value(),
            "N3XT_CREDS_TOKEN_URL": self.token_url(project),
            "N3XT_CREDS_SOURCE": "env",
        }

    # --- clients --------------------------------------------------------------------

    def add_client(
        self, client_id: str | None = None, client_secret: str | Secret | None = None
    ) -> Credentials:
        """Register a client pair; random id and secret are generated when not given."""
        return self._state.add_client(client_id, client_secret)

    def rotate_client(self, client_id: str, new_secret: str | Secret | None = None) -> Credentials:
        """Replace a client's secret (generated when not given); the old one stops working.

        Tokens already issued stay valid until they expire, as with a real rotation.
        """
        return self._state.rotate_client(client_id, new_secret)

    def remove_client(self, client_id: str) -> None:
        """Delete a client; its secret stops working and its tokens are revoked."""
        self._state.remove_client(client_id)

    @property
    def client_ids(self) -> list[str]:
        """The registered client ids."""
        return self._state.client_ids()

    # --- tokens and timing ----------------------------------------------------------

    @property
    def expires_in(self) -> int:
        """``expires_in`` (whole seconds) of tokens issued from now on."""
        return self._state.expires_in

    @expires_in.setter
    def expires_in(self, value: int) -> None:
        self._state.expires_in = value

    @property
    def latency(self) -> float:
        """Seconds added before every token answer (errors and faults included)."""
        return self._state.latency

    @latency.setter
    def latency(self, value: float) -> None:
        self._state.latency = value

    @property
    def trickle_interval(self) -> float:
        """Seconds between the bytes of every token answer (0, the default: answers go whole).

        With ``em.trickle_interval = 0.2`` the whole answer — status line, headers and
        body — goes out one byte every 0.2 s: a slow or malicious server that never
        trips a per-read timeout. The request stays in flight (``counters.in_flight``)
        until the last byte is sent or the client hangs up; the token it carries is
        issued (valid) as soon as the trickle starts. ``reset()`` sets it back to 0.
        """
        return self._state.trickle_interval

    @trickle_interval.setter
    def trickle_interval(self, value: float) -> None:
        self._state.trickle_interval = value

    def revoke_tokens(self, client_id: str | None = None) -> int:
        """Revoke every live token, or only ``client_id``'s; return how many were revoked."""
        return self._state.revoke_tokens(client_id)

    def revoke_token(self, token: str) -> bool:
        """Revoke one access token; False if it is unknown or already revoked."""
        return self._state.revoke_token(token)

    def expire_tokens(self) -> int:
        """Make every issued token expired now; return how many were still live."""
        return self._state.expire_tokens()

    @property
    def tokens_issued(self) -> int:
        """How many access tokens were issued since start or the last reset."""
        return self._state.token_count()

    def pause(self) -> None:
        """Hold every token answer (from now on) until :meth:`resume`.

        Held requests count as in flight, so a test can fire N concurrent requests, poll
        ``counters.in_flight`` until it reaches N, then resume: a deterministic way to
        prove concurrency without sleeps. Bounded by ``hang_timeout`` like a hang.
        """
        self._state.resumed.clear()

    def resume(self) -> None:
        """Release the token answers held by :meth:`pause`."""
        self._state.resumed.set()

    # --- faults, counters, reset ----------------------------------------------------

    def inject_fault(self, fault: Fault, count: int = 1, *, retry_after: int = 1) -> None:
        """Queue ``count`` faults (FIFO) for the next token requests, one request each.

        ``retry_after`` (seconds) is sent as ``Retry-After`` by :attr:`Fault.RATE_LIMITED`.
        """
        self._state.inject_fault(fault, count, retry_after)

    @property
    def pending_faults(self) -> list[Fault]:
        """Faults still queued, next first."""
        return self._state.pending_faults()

    @property
    def counters(self) -> Counters:
        """A snapshot of the request counters (see :class:`Counters`)."""
        return self._state.counters()

    def reset(self) -> None:
        """Forget clients, tokens, faults and counters; restore expires_in, latency and
        trickle_interval.

        The server keeps running on the same port; paused answers are released.
        """
        self._state.reset()

    def __repr__(self) -> str:
        where = self.url if self.running else "stopped"
        return (
            f"Emulator({where}, project={self.project!r}, "
            f"clients={len(self._state.client_ids())}, tokens={self.tokens_issued})"
        )
