"""``n3xt-creds emulator`` and ``n3xt-creds demo``: the local N3XT, and the whole flow on it.

The demo uses exactly what an application uses — settings (environment ``demo`` of
``demo.toml``, shipped in this package, or ``--settings FILE``), a source built from
them, the Authenticator, httpx — against the emulator on a free loopback port, so it
runs offline in any directory. Its variables (the client pair where the ``[demo]``
settings expect it, ``N3XT_CREDS_TOKEN_URL``) live in a private copy of the
environment handed to the settings: the shell's ``N3XT_*`` variables are neither read
nor changed.

``python -m n3xt_creds.testing`` runs :func:`run_emulator` too: one emulator command.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from importlib import resources
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
from ._load import load

__all__ = ["DEMO_ENV", "add_emulator_arguments", "run_demo", "run_emulator"]

DEMO_ENV = "demo"
DEMO_FILE = "demo.toml"  # shipped in this package
_DEFAULT_PORT = 8400
_DEFAULT_PROJECT = "project-test"


def add_emulator_arguments(parser: argparse.ArgumentParser) -> None:
    """The emulator's flags (``n3xt-creds emulator`` and ``python -m n3xt_creds.testing``)."""
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    parser.add_argument("--port", type=int, help="port (0: a free one)")
    parser.add_argument("--project", help="project id in the token URL")
    parser.add_argument(
        "--expires-in",
        type=int,
        default=3600,
        help="token lifetime, seconds (default: %(default)s)",
    )
    parser.add_argument(
        "--latency",
        type=float,
        default=0.0,
        help="seconds before each token answer (default: %(default)s)",
    )
    parser.add_argument(
        "--clients",
        type=int,
        default=1,
        metavar="N",
        help="throwaway client pairs to create and print, 1-1000 (default: %(default)s)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the URLs and pairs as one JSON line (for scripts and tests)",
    )


def run_emulator(args: argparse.Namespace) -> int:
    """Run the emulator in the foreground until Ctrl-C or SIGTERM."""
    if not 1 <= args.clients <= 1000:
        raise ConfigError(f"--clients must be between 1 and 1000, got {args.clients}")
    if not 1 <= args.expires_in <= 86_400 or not 0 <= args.latency <= 300:
        raise ConfigError("--expires-in must be 1..86400 seconds and --latency 0..300 seconds")
    port, project, why = _emulator_address(args)
    emulator = Emulator(
        host=args.host, port=port, expires_in=args.expires_in, latency=args.latency, project=project
    )
    try:
        emulator.start()
    except (ValueError, OSError) as exc:
        raise ConfigError(f"emulator cannot start on {args.host}:{port}: {exc}") from None

    def announce(emulator: Emulator, pairs: Sequence[Credentials]) -> None:
        if args.json:
            print(json.dumps(_banner(emulator, pairs)), flush=True)
            return
        print(f"N3XT emulator running ({why})")
        print(f"  url:          {emulator.url}")
        print(f"  token_url:    {emulator.token_url()}")
        print(f"  api_base_url: {emulator.api_base_url}")
        print(f"  counters_url: {emulator.counters_url}")
        print(f"  expires_in: {args.expires_in} s, latency: {args.latency} s")
        print("Throwaway client pairs for this emulator only (printed on purpose):")
        first, *others = pairs
        print(f"  export N3XT_CLIENT_ID={first.client_id}")
        print(f"  export N3XT_CLIENT_SECRET={first.client_secret.get_secret_value()}")
        print(f"  export N3XT_CREDS_TOKEN_URL={emulator.token_url()}")
        for number, pair in enumerate(others, 2):
            print(f"  client {number}: {pair.client_id} {pair.client_secret.get_secret_value()}")
        print("Press Ctrl-C to stop.", flush=True)

    serve_until_stopped(emulator, announce, clients=args.clients)
    if not args.json:
        print("N3XT emulator stopped.", flush=True)
    return 0


def _banner(emulator: Emulator, pairs: Sequence[Credentials]) -> dict[str, Any]:
    return {
        "url": emulator.url,
        "token_url": emulator.token_url(),
        "api_base_url": emulator.api_base_url,
        "counters_url": emulator.counters_url,
        "clients": [
            {"client_id": p.client_id, "client_secret": p.client_secret.get_secret_value()}
            for p in pairs
        ],
    }


def _emulator_address(args: argparse.Namespace) -> tuple[int, str, str]:
    """Port and project: from the flags, else the settings' loopback token_url, else defaults."""
    project = args.project or _DEFAULT_PROJECT
    if args.port is not None:
        return args.port, project, "port from --port"
    try:
        settings, _, _ = load(args)
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
    with contextlib.ExitStack() as stack:
        if args.settings:
            path = Path(args.settings)
        else:
            path = stack.enter_context(resources.as_file(resources.files(__package__) / DEMO_FILE))
        return _run_demo(args, path)
    raise AssertionError("unreachable")  # pragma: no cover - for type checkers


def _run_demo(args: argparse.Namespace, path: Path) -> int:
    env = args.env or DEMO_ENV
    # The demo's own variables, in a private copy: the shell's choices do not leak in.
    environ: dict[str, str] = {
        k: v for k, v in os.environ.items() if not k.startswith(("N3XT_CREDS_", "N3XT_"))
    }
    out = _Printer()
    with Emulator(port=0) as emulator, _library_log_shown():
        out.step("Start the local N3XT emulator")
        out.say(f"token endpoint {emulator.token_url()}, API {emulator.api_base_url}")

        out.step("Create a client at N3XT and put the pair where the settings expect it")
        environ["N3XT_CREDS_TOKEN_URL"] = emulator.token_url()
        settings = load_settings(path, env, section=args.section, environ=environ)
        id_var, secret_var = _env_variables(settings)
        creds = emulator.add_client()
        environ[id_var] = creds.client_id
        environ[secret_var] = creds.client_secret.get_secret_value()
        out.say(
            f"{id_var}={creds.client_id}  {secret_var}=<secret, fingerprint {creds.client_secret.fingerprint}>"
        )
        out.say(
            f"N3XT_CREDS_TOKEN_URL={emulator.token_url()}  (points the settings at the emulator)"
        )

        out.step(f"Load {path.name}, environment {env!r}")
        settings = load_settings(path, env, section=args.section, environ=environ)
        out.say(f"file {settings.path}: {settings.path_reason}")
        for key in ("source", "token_url", f"sources.{settings.source}.client_id_var"):
            out.say(f"{key}: from {settings.origin(key)}")
        source = build_source(settings)
        auth = build_authenticator(settings, source)
        try:
            _demo_calls(out, emulator, auth, secret_var, environ)
        finally:
            auth.close()
        _demo_shared_cache(out, emulator, path, env, environ)
        counters = emulator.counters
        out.step("What the emulator saw")
        out.say(
            f"token requests: {dict(counters.token_requests)}; API calls: {dict(counters.api_calls)}"
        )
    print("\nDemo finished: no secret or token was printed, only fingerprints.")
    return 0


def _demo_calls(
    out: _Printer,
    emulator: Any,
    auth: Any,
    secret_var: str,
    environ: MutableMapping[str, str],
) -> None:
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
        environ[secret_var] = rotated.client_secret.get_secret_value()
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
        environ[secret_var] = rotated.client_secret.get_secret_value()
        answer = client.get(emulator.api_url("/v1/ping"))
        out.say(f"store updated -> next call recovers by itself: API {answer.status_code}")


def _demo_shared_cache(
    out: _Printer, emulator: Any, path: Path, env: str, demo_environ: Mapping[str, str]
) -> None:
    """Two processes started together with a FileTokenCache: one token request."""
    import subprocess  # noqa: PLC0415 - demo only
    import tempfile  # noqa: PLC0415

    out.step("Shared cache: two processes, one token request (docs/shared-cache.md)")
    before = emulator.tokens_issued
    with tempfile.TemporaryDirectory(prefix="n3xt-demo-") as tmp:
        environ = {
            **demo_environ,  # the demo's private environment: its pair and token URL
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
