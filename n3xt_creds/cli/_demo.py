"""``n3xt-creds emulator`` and ``n3xt-creds demo``: the local N3XT, and the whole flow on it.

The demo uses exactly what an application uses — ``settings.toml`` (environment
``demo``), a source built from it, the Authenticator, httpx — against the emulator
on a free loopback port, so it runs offline on a fresh clone. The only things it
changes are environment variables of its own process: the client pair (where the
``[demo]`` settings expect it) and ``N3XT_CREDS_TOKEN_URL`` (the emulator's port).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from .._secret import Secret
from ..credentials import Credentials
from ..errors import ConfigError, InvalidClientError
from ..settings import build_authenticator, build_source, load_settings
from ..testing import Emulator
from ..testing._foreground import serve_until_stopped

__all__ = ["DEMO_ENV", "run_demo", "run_emulator"]

DEMO_ENV = "demo"
_DEFAULT_PORT = 8400
_DEFAULT_PROJECT = "project-test"


def run_emulator(args: argparse.Namespace) -> int:
    """Run the emulator in the foreground until Ctrl-C or SIGTERM."""
    port, project, why = _emulator_address(args)
    emulator = Emulator(
        host=args.host, port=port, expires_in=args.expires_in, latency=args.latency, project=project
    )
    try:
        emulator.start()
    except (ValueError, OSError) as exc:
        raise ConfigError(f"emulator cannot start on {args.host}:{port}: {exc}") from None

    def announce(emulator: Emulator, creds: Credentials) -> None:
        print(f"N3XT emulator running ({why})")
        print(f"  url:        {emulator.url}")
        print(f"  token_url:  {emulator.token_url()}")
        print(f"  api_url:    {emulator.api_url()}")
        print(f"  expires_in: {args.expires_in} s, latency: {args.latency} s")
        print("A throwaway client pair for this emulator only (printed on purpose):")
        print(f"  export N3XT_CLIENT_ID={creds.client_id}")
        print(f"  export N3XT_CLIENT_SECRET={creds.client_secret.get_secret_value()}")
        print(f"  export N3XT_CREDS_TOKEN_URL={emulator.token_url()}")
        print("Press Ctrl-C to stop.", flush=True)

    serve_until_stopped(emulator, announce)
    print("N3XT emulator stopped.", flush=True)
    return 0


def _emulator_address(args: argparse.Namespace) -> tuple[int, str, str]:
    """Port and project: from the flags, else the settings' loopback token_url, else defaults."""
    project = args.project or _DEFAULT_PROJECT
    if args.port is not None:
        return args.port, project, "port from --port"
    try:
        settings = load_settings(args.settings, args.env)
    except ConfigError as exc:
        first = str(exc).splitlines()[0]
        return _DEFAULT_PORT, project, f"default port; settings not used: {first}"
    url = urlsplit(settings.token_url)
    if url.scheme == "http" and url.port and url.hostname in {"127.0.0.1", "localhost", "::1"}:
        parts = url.path.split("/")
        from_url = parts[parts.index("public") + 1] if "public" in parts[:-1] else project
        return (
            url.port,
            args.project or from_url,
            f"port and project from token_url in {settings.where}",
        )
    return _DEFAULT_PORT, project, f"default port: token_url in {settings.where} is not loopback"


def run_demo(args: argparse.Namespace) -> int:
    """The guided demo; see the module docstring."""
    path = Path(args.settings) if args.settings else Path.cwd() / "settings.toml"
    if not path.is_file():
        raise ConfigError(
            f"demo: {path} not found; run `make demo` (or `n3xt-creds demo`) from the "
            "repository root, or pass --settings path/to/settings.toml",
            key="settings",
            path=str(path),
        )
    env = args.env or DEMO_ENV
    out = _Printer()
    with Emulator(port=0) as emulator, _library_log_shown():
        out.step("Start the local N3XT emulator")
        out.say(f"token endpoint {emulator.token_url()}, API {emulator.api_url()}")

        out.step("Create a client at N3XT and put the pair where the settings expect it")
        settings = load_settings(path, env)
        id_var, secret_var = _env_variables(settings)
        creds = emulator.add_client()
        os.environ[id_var] = creds.client_id
        os.environ[secret_var] = creds.client_secret.get_secret_value()
        os.environ["N3XT_CREDS_TOKEN_URL"] = emulator.token_url()
        out.say(
            f"{id_var}={creds.client_id}  {secret_var}=<secret, fingerprint {creds.client_secret.fingerprint}>"
        )
        out.say(
            f"N3XT_CREDS_TOKEN_URL={emulator.token_url()}  (points the settings at the emulator)"
        )

        out.step(f"Load {path.name}, environment {env!r}")
        settings = load_settings(path, env)
        out.say(f"file {settings.path}: {settings.path_reason}")
        for key in ("source", "token_url", f"sources.{settings.source}.client_id_var"):
            out.say(f"{key}: from {settings.origin(key)}")
        source = build_source(settings)
        auth = build_authenticator(settings, source)
        try:
            _demo_calls(out, emulator, auth, secret_var)
        finally:
            auth.close()
        _demo_shared_cache(out, emulator, path, env)
        counters = emulator.counters
        out.step("What the emulator saw")
        out.say(
            f"token requests: {dict(counters.token_requests)}; API calls: {dict(counters.api_calls)}"
        )
    print("\nDemo finished: no secret or token was printed, only fingerprints.")
    return 0


def _demo_calls(out: _Printer, emulator: Any, auth: Any, secret_var: str) -> None:
    out.step("Get a token")
    started = time.perf_counter()
    first = Secret(auth.get_token())
    out.say(
        f"token fingerprint {first.fingerprint} in {(time.perf_counter() - started) * 1000:.1f} ms"
    )
    started = time.perf_counter()
    again = Secret(auth.get_token())
    out.say(
        f"asked again: {again.fingerprint} from the cache in {(time.perf_counter() - started) * 1000:.2f} ms"
    )

    out.step("Call the API through httpx (the Authenticator is an httpx.Auth)")
    with httpx.Client(auth=auth) as client:
        answer = client.get(emulator.api_url("/v1/ping"))
        out.say(f"GET /api/v1/ping -> {answer.status_code} {answer.json()}")

        out.step("Forced refresh: auth.invalidate()")
        auth.invalidate()
        refreshed = Secret(auth.get_token())
        out.say(f"new token fingerprint {refreshed.fingerprint} (was {first.fingerprint})")

        client_id = answer.json().get("client_id")
        out.step("Secret rotation, store updated first (the normal way)")
        rotated = emulator.rotate_client(client_id)
        os.environ[secret_var] = rotated.client_secret.get_secret_value()
        out.say(
            f"N3XT now accepts only secret {rotated.client_secret.fingerprint}; {secret_var} updated"
        )
        auth.invalidate()
        answer = client.get(emulator.api_url("/v1/ping"))
        out.say(f"next refresh re-reads the source -> API {answer.status_code}, no restart")

        out.step("Secret rotation at N3XT before the store is updated")
        rotated = emulator.rotate_client(client_id)
        auth.invalidate()
        try:
            auth.get_token()
            out.say("unexpected: the old secret was accepted")
        except InvalidClientError as exc:
            out.say(
                f"InvalidClientError after one re-read of the source (request_id {exc.request_id})"
            )
        os.environ[secret_var] = rotated.client_secret.get_secret_value()
        answer = client.get(emulator.api_url("/v1/ping"))
        out.say(f"store updated -> next call recovers by itself: API {answer.status_code}")


def _demo_shared_cache(out: _Printer, emulator: Any, path: Path, env: str) -> None:
    """Two processes started together with a FileTokenCache: one token request."""
    import subprocess  # noqa: PLC0415 - demo only
    import tempfile  # noqa: PLC0415

    out.step("Shared cache: two processes, one token request (docs/shared-cache.md)")
    before = emulator.tokens_issued
    with tempfile.TemporaryDirectory(prefix="n3xt-demo-") as tmp:
        environ = {
            **os.environ,
            "N3XT_CREDS_SHARED_CACHE__BACKEND": "file",
            "N3XT_CREDS_SHARED_CACHE__DIRECTORY": str(Path(tmp) / "cache"),
        }
        command = [sys.executable, "-m", "n3xt_creds.cli", "token", "--settings", str(path)]
        command += ["--env", env]
        out.say("N3XT_CREDS_SHARED_CACHE__BACKEND=file; starting two `n3xt-creds token` at once")
        workers = [
            subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
                command, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for _ in range(2)
        ]
        for number, worker in enumerate(workers, 1):
            stdout, stderr = worker.communicate(timeout=60)
            if worker.returncode != 0:
                out.say(f"process {number} failed: {stderr.strip().splitlines()[-1:]}")
                continue
            out.say(f"process {number}: token fingerprint {Secret(stdout.strip()).fingerprint}")
    out.say(f"token requests made by the two processes: {emulator.tokens_issued - before}")


def _env_variables(settings: Any) -> tuple[str, str]:
    """The variables the demo's env source reads (its table, else EnvSource's defaults)."""
    if settings.source != "env":
        raise ConfigError(
            f'{settings.where}: the demo needs `source = "env"` (it puts the generated '
            f"pair in environment variables); got {settings.source!r} from {settings.origin('source')}",
            key="source",
            path=str(settings.path),
            env=settings.env,
        )
    table = settings.sources.get("env", {})
    return (
        str(table.get("client_id_var", "N3XT_CLIENT_ID")),
        str(table.get("client_secret_var", "N3XT_CLIENT_SECRET")),
    )


@contextlib.contextmanager
def _library_log_shown() -> Iterator[None]:
    """Show n3xt_creds' own warnings inline, indented, so the demo reads as one story."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("   | log %(levelname)s: %(message)s"))
    logger = logging.getLogger("n3xt_creds")
    logger.addHandler(handler)
    propagate, logger.propagate = logger.propagate, False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


class _Printer:
    def __init__(self) -> None:
        self.number = 0

    def step(self, title: str) -> None:
        self.number += 1
        print(f"\n{self.number}. {title}", flush=True)

    def say(self, line: str) -> None:
        print(f"   {line}", flush=True)
