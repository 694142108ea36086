"""``python -m n3xt_creds.testing``: the same command as ``n3xt-creds emulator``.

One emulator command, one set of flags, one output: this entry point only hands its
arguments to :func:`n3xt_creds.cli.main` (``n3xt-creds emulator --help`` lists them).
It exists so that ``python -m`` works where the console script is not on ``PATH``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``n3xt-creds emulator`` with ``argv`` (default: the command line)."""
    from ..cli import main as cli_main  # noqa: PLC0415 - the CLI only when run as a command

    return cli_main(["emulator", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
