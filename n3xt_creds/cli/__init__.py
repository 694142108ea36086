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
    141 stdout was closed early (piped into ``head``): ended quietly

Output never contains a client secret or an access token — except ``token``, whose
whole job is to print the token on stdout, and ``emulator``, which prints the
throwaway client pair of the local emulator it just created.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from typing import TextIO

from .. import __version__
from ..errors import N3XTCredsError
from ..settings import build_authenticator, build_source
from . import _check, _config, _demo
from ._exit import (
    EXIT_CODES,
    EXIT_CONFIG,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PIPE,
    exit_code_for,
)
from ._load import load

__all__ = ["EXIT_CODES", "build_parser", "exit_code_for", "main"]

_EPILOG = """\
examples:
  n3xt-creds token                                   # print a token for ./settings.toml
  curl -H "Authorization: Bearer $(n3xt-creds token)" https://api.n3xt.io/v1/...
  n3xt-creds check --env production                  # diagnose every step
  n3xt-creds check --all-envs                        # validate every environment (CI, offline)
  N3XT_CREDS_SOURCE=file n3xt-creds check --json     # as a machine would
  n3xt-creds config --settings deploy/settings.toml  # effective settings + origins
  n3xt-creds config --section n3xt                   # our [<env>.n3xt] tables of the app's file
  ENV_FOR_DYNACONF=production n3xt-creds check --dynaconf app:settings   # a dynaconf app
  n3xt-creds emulator --port 8400                    # local N3XT for development
  n3xt-creds demo                                    # the whole flow, offline

exit codes: 0 ok, 1 unexpected, 2 usage/settings, 3 no credentials found,
  4 source failed, 5 token endpoint failed, 6 credentials rejected, 130 interrupted,
  141 stdout closed early (e.g. piped into head).
settings: --settings, else $N3XT_CREDS_SETTINGS, else ./settings.toml (none needed when
  $N3XT_CREDS_TOKEN_URL is set); environment: --env, else $N3XT_CREDS_ENV, else
  development. See docs/cli.md.
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
    group.add_argument(
        "--section",
        metavar="NAME",
        help="read our keys from the [<env>.NAME] tables of a file the app shares",
    )
    group.add_argument(
        "--dynaconf",
        metavar="MODULE:ATTR",
        help="use the app's own Dynaconf object (e.g. myapp.config:settings) and its "
        "`n3xt` section (or --section), in its current environment",
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
    parser.add_argument("--version", action="version", version=f"n3xt-creds {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    raw = argparse.RawDescriptionHelpFormatter

    token = commands.add_parser(
        "token",
        parents=[common],
        formatter_class=raw,
        help="print a raw access token on stdout",
        description="Print a raw access token (no 'Bearer ' prefix) alone on stdout.\n"
        "On failure: one line on stderr saying what failed, and a non-zero exit code\n"
        "(see n3xt-creds --help); `n3xt-creds check` diagnoses it step by step.",
        epilog='example:\n  curl -H "Authorization: Bearer $(n3xt-creds token --env production)" URL',
    )
    token.add_argument(
        "-v", "--verbose", action="store_true", help="also show the library's log lines"
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
        "as fingerprints. Exits non-zero with the failing step's exit code.\n"
        "With --all-envs: validate every environment of the file instead (key names,\n"
        "types, ranges, secrets), without network and without building any source.",
        epilog="examples:\n  n3xt-creds check\n  n3xt-creds check --all-envs\n"
        "  N3XT_CREDS_SOURCE=vault n3xt-creds check --env production --json",
    )
    check.add_argument("--json", action="store_true", help="print a JSON report")
    check.add_argument(
        "--all-envs", action="store_true", help="validate every environment, offline"
    )
    check.set_defaults(run=_check.run_check)

    config = commands.add_parser(
        "config",
        parents=[common],
        formatter_class=raw,
        help="show the effective settings and where each value came from",
        description="Show every effective setting and where its value came from: the file's\n"
        "[default] or environment table, an N3XT_CREDS_* variable, a variable the source\n"
        "falls back to (VAULT_ADDR, AWS_ENDPOINT_URL_SECRETS_MANAGER...), or the built-in\n"
        "default. The selected source's keys are all listed. Secret-looking keys are redacted.",
        epilog="examples:\n  n3xt-creds config --env production\n  n3xt-creds config --json | jq .values.source",
    )
    config.add_argument("--json", action="store_true", help="print JSON")
    config.set_defaults(run=_config.run_config)

    emulator = commands.add_parser(
        "emulator",
        parents=[common],
        formatter_class=raw,
        help="run the local N3XT emulator until Ctrl-C",
        description="Run a local emulator of N3XT's token endpoint and a protected API.\n"
        "Prints its URLs (counters as JSON at counters_url) and generated throwaway client\n"
        "pairs. Without --port, the port and project are taken from the settings'\n"
        "token_url when it points at loopback (settings.toml's [development] does), else\n"
        "8400 and project-test. `python -m n3xt_creds.testing` is this same command.\n"
        "NOTE: the client secrets ARE printed on purpose: they exist only in this process.",
        epilog="examples:\n  n3xt-creds emulator --expires-in 60 --latency 0.2\n"
        "  n3xt-creds emulator --port 0 --clients 4 --json   # for multi-process tests",
    )
    _demo.add_emulator_arguments(emulator)
    emulator.set_defaults(run=_demo.run_emulator)

    demo = commands.add_parser(
        "demo",
        parents=[common],
        formatter_class=raw,
        help="show the whole flow against a local emulator (offline)",
        description="Start the emulator on a free loopback port, load the demo settings that\n"
        "ship inside the package (or --settings FILE, environment `demo`), get a token,\n"
        "call the API through httpx, force a refresh and handle a secret rotation.\n"
        "Offline; needs no file in the working directory. The demo's variables (its\n"
        "client pair, its token URL) live in a private copy of the environment: your\n"
        "shell's N3XT_* variables are neither read nor changed.",
        epilog="example:\n  n3xt-creds demo      # in any directory, after `pip install n3xt-creds`",
    )
    demo.set_defaults(run=_demo.run_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``n3xt-creds``; return the exit code (the console script exits with it)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
        sys.stdout.flush()
    except KeyboardInterrupt:
        print("n3xt-creds: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return _stdout_closed()
    except N3XTCredsError as exc:
        report_error(exc, one_line=args.command == "token")
        return exit_code_for(exc)
    except ImportError as exc:
        # A dependency missing below a check we made (a broken install): say which, once.
        missing = getattr(exc, "name", None) or "a module"
        print(
            f"n3xt-creds: ImportError: {missing} cannot be imported ({exc}); reinstall with "
            "the extra you use, e.g. pip install 'n3xt-creds[vault]' or 'n3xt-creds[aws]'",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    return code


def report_error(
    error: BaseException, stream: TextIO | None = None, *, one_line: bool = False
) -> None:
    """Print ``error`` as ``n3xt-creds: <class>: <message>`` on stderr (messages are secret-free).

    ``one_line``: only the message's first line, with a pointer to ``check`` when there
    was more (for ``token``, whose stderr often lands in a script's log).
    """
    message = str(error)
    if one_line and "\n" in message:
        message = message.splitlines()[0] + " (details: n3xt-creds check)"
    print(f"n3xt-creds: {type(error).__name__}: {message}", file=stream or sys.stderr)


def _stdout_closed() -> int:
    """The reader of our stdout went away (``| head``): end quietly, like ``cat`` does."""
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's final flush must not fail
    return EXIT_PIPE


class _HeldLogs(logging.Handler):
    """Holds the library's warnings while ``token`` runs (see :func:`_run_token`)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def _library_logs_held(verbose: bool) -> Iterator[_HeldLogs | None]:
    """On failure the one error line says it all, so the warnings that led to it are
    dropped; on success they are shown after the fact (a shared cache that is down...).
    With ``--verbose``, or when the application configured logging, nothing is held."""
    logger = logging.getLogger("n3xt_creds")
    if verbose or logger.handlers or logging.getLogger().handlers:
        yield None
        return
    held = _HeldLogs()
    logger.addHandler(held)
    try:
        yield held
    finally:
        logger.removeHandler(held)


def _run_token(args: argparse.Namespace) -> int:
    with _library_logs_held(args.verbose) as held:
        settings, registry, _ = load(args)
        auth = build_authenticator(settings, build_source(settings, registry=registry))
        try:
            token = auth.get_token()
        finally:
            auth.close()
    for record in held.records if held is not None else ():
        print(f"n3xt-creds: {record.levelname.lower()}: {record.getMessage()}", file=sys.stderr)
    sys.stdout.write(token + "\n")
    return EXIT_OK
