"""A canary secret pushed through every foundation path must appear nowhere.

Reprs, str, DEBUG logs, every exception with its chained causes and notes, and
pickling attempts are scanned. (The authenticator, settings and CLI have their own
canary tests next to their code; this one covers models, errors and the sources.)
"""

from __future__ import annotations

import logging
import pickle
import traceback
from collections.abc import Callable
from pathlib import Path

import pytest

from n3xt_creds import (
    ChainSource,
    Credentials,
    EnvSource,
    FileSource,
    N3XTCredsError,
    Secret,
)
from n3xt_creds.sources.options import SourceOptions

CANARY = "canary-Z9q-0b7e41c2-foundation"


def everything_about(exc: BaseException) -> str:
    """Every text an exception can show: message, repr, args, causes, traceback."""
    return "".join(traceback.format_exception(exc)) + repr(exc) + repr(exc.args)


def scenarios(tmp: Path) -> list[Callable[[], object]]:
    (tmp / "half").mkdir()
    (tmp / "half" / "client_secret").write_text(CANARY)
    (tmp / "big").mkdir()
    (tmp / "big" / "client_id").write_text("id")
    (tmp / "big" / "client_secret").write_text(CANARY * 5000)
    (tmp / "bin").mkdir()
    (tmp / "bin" / "client_id").write_text("id")
    (tmp / "bin" / "client_secret").write_bytes(CANARY.encode() + b"\xff\xfe")
    (tmp / "outside").mkdir()
    (tmp / "outside" / "client_secret").write_text(CANARY)
    (tmp / "escape").mkdir()
    (tmp / "escape" / "client_id").write_text("id")
    (tmp / "escape" / "client_secret").symlink_to(tmp / "outside" / "client_secret")

    def options_secret() -> object:
        options = SourceOptions(
            {"client_secret": CANARY}, prefix="sources.x", path="s.toml", env="dev"
        )
        options.finish()
        return options

    return [
        lambda: EnvSource(environ={"N3XT_CLIENT_SECRET": CANARY}).get_credentials(),
        lambda: EnvSource(
            environ={"N3XT_CLIENT_ID": "id", "N3XT_CLIENT_SECRET": CANARY}
        ).get_credentials(),
        lambda: FileSource(tmp / "half").get_credentials(),
        lambda: FileSource(tmp / "big").get_credentials(),
        lambda: FileSource(tmp / "bin").get_credentials(),
        lambda: FileSource(tmp / "escape").get_credentials(),
        lambda: ChainSource([EnvSource(environ={}), FileSource(tmp / "half")]).get_credentials(),
        lambda: pickle.dumps(Credentials("id", Secret(CANARY))),
        lambda: SourceOptions({"timeout": CANARY}, prefix="x").get_float("timeout"),
        options_secret,
    ]


def test_canary_appears_nowhere(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    errors = 0
    for scenario in scenarios(tmp_path):
        try:
            result = scenario()
        except (N3XTCredsError, TypeError) as exc:
            errors += 1
            seen.append(everything_about(exc))
            logging.getLogger("n3xt_creds").exception("scenario failed")
        else:
            seen.append(repr(result))
            seen.append(str(result))
            logging.getLogger("n3xt_creds").debug("result %s %r", result, result)
    assert errors >= 9, "scenarios are meant to fail; a change made them pass silently"
    seen.append(caplog.text)
    for record in caplog.records:
        seen.append(record.getMessage())
    text = "\n".join(seen)
    assert CANARY not in text
    assert CANARY[:16] not in text
