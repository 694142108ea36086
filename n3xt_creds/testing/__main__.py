"""``python -m n3xt_creds.testing``: run the N3XT emulator locally until Ctrl-C.

Prints the URLs and a freshly generated client pair so an app under development can
point at it (``N3XT_CLIENT_ID`` / ``N3XT_CLIENT_SECRET``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..credentials import Credentials
from ._foreground import serve_until_stopped
from .emulator import Emulator

__all__ = ["main"]

_DESCRIPTION = """\
Run a local emulator of N3XT's token endpoint and a protected stand-in API, for
developing and testing applications offline.

On start it prints its URL, token URL, API URL and a generated client pair.
NOTE: the client_secret IS printed on purpose - it is a throwaway secret that exists
only in this process, and printing it is how you hand it to your app. Never point
this command at, or reuse its output as, real N3XT credentials.
"""


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m n3xt_creds.testing",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    parser.add_argument("--port", type=int, default=0, help="port to bind (default: a free one)")
    parser.add_argument(
        "--project",
        default="project-test",
        help="project id in the token URL (default: %(default)s)",
    )
    parser.add_argument(
        "--expires-in",
        type=int,
        default=3600,
        help="lifetime of issued tokens in seconds (default: %(default)s)",
    )
    parser.add_argument(
        "--latency",
        type=float,
        default=0.0,
        help="seconds to wait before each token answer (default: %(default)s)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator in the foreground until Ctrl-C or SIGTERM; return the exit code."""
    args = _parse(argv)
    try:
        emulator = Emulator(
            host=args.host,
            port=args.port,
            expires_in=args.expires_in,
            latency=args.latency,
            project=args.project,
        )
        emulator.start()
    except (ValueError, OSError) as exc:
        print(f"n3xt emulator: cannot start: {exc}", file=sys.stderr)
        return 2

    def announce(emulator: Emulator, creds: Credentials) -> None:
        print(f"url: {emulator.url}")
        print(f"token_url: {emulator.token_url()}")
        print(f"api_url: {emulator.api_url()}")
        print(f"client_id: {creds.client_id}")
        # Printing the generated secret is this command's purpose (see --help).
        print(f"client_secret: {creds.client_secret.get_secret_value()}")
        print("Press Ctrl-C to stop.", flush=True)

    serve_until_stopped(emulator, announce)
    print("n3xt emulator stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
