"""``n3xt-creds``: get a token, diagnose a deployment, show settings, run the emulator, demo.

Built on :mod:`argparse`: the command is small, argparse ships with Python, and the
library must not pull in a CLI framework (click/typer) for every application that
only imports it. See ``docs/cli.md``.

Exit codes (one per failure class, so scripts can tell them apart)::

    0  success
    1  unexpected error (a bug: please report it)
    2  usage error or bad settings (ConfigError)
    3  no credentials found (CredentialsNotFoundError)
    4  a credential source failed (SourceError)
    5  the token endpoint failed (TokenRequestError)
    6  the token endpoint rejected the credentials (InvalidClientError)
    130 interrupted (Ctrl-C)

Output never contains a client secret or an access token — except ``token``, whose
whole job is to print the token on stdout, and ``emulator``, which prints the
throwaway client pair of the local emulator it just created.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from ..errors import N3XTCredsError
from ..settings import from_settings, load_settings
from . import _check, _demo
from ._exit import EXIT_CODES, EXIT_INTERRUPTED, EXIT_OK, exit_code_for

__all__ = ["EXIT_CODES", "exit_code_for", "main"]

_EPILOG = """\
examples:
  n3xt-creds token                                   # print a token for ./settings.toml
  curl -H "Authorization: Bearer $(n3xt-creds token)" https://api.n3xt.io/v1/...
  n3xt-creds check --env production                  # diagnose every step
  N3XT_CREDS_SOURCE=file n3xt-creds check --json     # as a machine would
  n3xt-creds config --settings deploy/settings.toml  # effective settings + origins
  n3xt-creds emulator --port 8400                    # local N3XT for development
  n3xt-creds demo                                    # the whole flow, offline

exit codes: 0 ok, 1 unexpected, 2 usage/settings, 3 no credentials found,
  4 source failed, 5 token endpoint failed, 6 credentials rejected, 130 interrupted.
settings: --settings, else $N3XT_CREDS_SETTINGS, else ./settings.toml;
  environment: --env, else $N3XT_CREDS_ENV, else development. See docs/cli.md.
"""


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("settings")
    group.add_argument(
        "--settings",
        metavar="FILE",
        help="settings file (default: $N3XT_CREDS_SETTINGS, else ./settings.toml)",
    )
    group.add_argument(
        "--env",
        metavar="NAME",
        help="environment table to use (default: $N3XT_CREDS_ENV, else development)",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``n3xt-creds`` (exposed for docs and tests)."""
    common = _common()
    parser = argparse.ArgumentParser(
        prog="n3xt-creds",
        description="Get N3XT API tokens and diagnose n3xt_creds deployments.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    raw = argparse.RawDescriptionHelpFormatter

    token = commands.add_parser(
        "token",
        parents=[common],
        formatter_class=raw,
        help="print a raw access token on stdout",
        description="Print a raw access token (no 'Bearer ' prefix) alone on stdout.\n"
        "Errors go to stderr with a non-zero exit code (see n3xt-creds --help).",
        epilog='example:\n  curl -H "Authorization: Bearer $(n3xt-creds token --env production)" URL',
    )
    token.set_defaults(run=_run_token)

    check = commands.add_parser(
        "check",
        parents=[common],
        formatter_class=raw,
        help="diagnose settings, source and token endpoint, step by step",
        description="Diagnose every step: which settings file and environment and why, which\n"
        "source and from which key or variable, reading the credentials, requesting a\n"
        "token (outcome, timing, expiry, refresh time). Secrets and tokens are shown only\n"
        "as fingerprints. Exits non-zero with the failing step's exit code.",
        epilog="examples:\n  n3xt-creds check\n  N3XT_CREDS_SOURCE=vault n3xt-creds check --env production --json",
    )
    check.add_argument("--json", action="store_true", help="print a JSON report")
    check.set_defaults(run=_check.run_check)

    config = commands.add_parser(
        "config",
        parents=[common],
        formatter_class=raw,
        help="show the effective settings and where each value came from",
        description="Show the effective settings and, for each key, where its value came from:\n"
        "the file's [default] or environment table, an N3XT_CREDS_* variable, or the\n"
        "built-in default. Secret-looking keys are redacted.",
        epilog="examples:\n  n3xt-creds config --env production\n  n3xt-creds config --json | jq .values.source",
    )
    config.add_argument("--json", action="store_true", help="print JSON")
    config.set_defaults(run=_run_config)

    emulator = commands.add_parser(
        "emulator",
        parents=[common],
        formatter_class=raw,
        help="run the local N3XT emulator until Ctrl-C",
        description="Run a local emulator of N3XT's token endpoint and a protected API.\n"
        "Prints its URL, token URL and a generated throwaway client pair. Without --port,\n"
        "the port and project are taken from the settings' token_url when it points at\n"
        "loopback (settings.toml's [development] does), else 8400 and project-test.",
        epilog="example:\n  n3xt-creds emulator --expires-in 60 --latency 0.2",
    )
    emulator.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    emulator.add_argument("--port", type=int, help="port (0: a free one)")
    emulator.add_argument("--project", help="project id in the token URL")
    emulator.add_argument(
        "--expires-in",
        type=int,
        default=3600,
        help="token lifetime, seconds (default: %(default)s)",
    )
    emulator.add_argument(
        "--latency",
        type=float,
        default=0.0,
        help="seconds before each token answer (default: %(default)s)",
    )
    emulator.set_defaults(run=_demo.run_emulator)

    demo = commands.add_parser(
        "demo",
        parents=[common],
        formatter_class=raw,
        help="show the whole flow against a local emulator (offline)",
        description="Start the emulator on a free loopback port, put a generated client pair\n"
        "where the [demo] settings expect it, load settings.toml, get a token, call the\n"
        "API through httpx, force a refresh and handle a secret rotation. Offline.",
        epilog="example:\n  make demo      # same as: .venv/bin/n3xt-creds demo",
    )
    demo.set_defaults(run=_demo.run_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``n3xt-creds``; return the exit code (the console script exits with it)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
    except KeyboardInterrupt:
        print("n3xt-creds: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except N3XTCredsError as exc:
        report_error(exc)
        return exit_code_for(exc)
    return code


def report_error(error: BaseException, stream: TextIO | None = None) -> None:
    """Print ``error`` as ``n3xt-creds: <class>: <message>`` on stderr (messages are secret-free)."""
    print(f"n3xt-creds: {type(error).__name__}: {error}", file=stream or sys.stderr)


def _run_token(args: argparse.Namespace) -> int:
    auth = from_settings(args.settings, args.env)
    try:
        token = auth.get_token()
    finally:
        auth.close()
    sys.stdout.write(token + "\n")
    return EXIT_OK


def _run_config(args: argparse.Namespace) -> int:
    settings = load_settings(args.settings, args.env)
    rows = settings.effective()
    if args.json:
        document: dict[str, Any] = {
            "settings_file": str(settings.path),
            "settings_file_reason": settings.path_reason,
            "env": settings.env,
            "env_reason": settings.env_reason,
            "environments": list(settings.environments),
            "values": {key: {"value": value, "origin": origin} for key, value, origin in rows},
        }
        print(json.dumps(document, indent=2))
        return EXIT_OK
    print(f"settings file: {settings.path}  ({settings.path_reason})")
    print(
        f"environment:   {settings.env}  ({settings.env_reason}); file has: {', '.join(settings.environments)}"
    )
    width = max(len(key) for key, _, _ in rows)
    for key, value, origin in rows:
        print(f"  {key:<{width}} = {json.dumps(value)}  # {origin}")
    return EXIT_OK
