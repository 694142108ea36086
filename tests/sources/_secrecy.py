"""Canary scans of an error a source raised: message, context chain, traceback locals.

``assert_nothing_reachable(error, secret)`` fails when ``secret`` (a str) is reachable
from ``error`` the ways a crash reporter or a curious handler reaches things:

* the formatted traceback and the repr of every frame's locals (what Sentry and
  ``traceback.TracebackException(capture_locals=True)`` record; the test suite's own
  frames excepted), the whole ``__cause__``/``__context__`` chain included;
* the attributes of every exception in that chain, followed a few levels deep
  (``err.__context__.__context__.request.headers["X-Vault-Token"]`` is how the Vault
  token used to be found).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import traceback
from collections.abc import Iterator
from types import FrameType, TracebackType
from typing import Any

_MAX_DEPTH = 6


def chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and every exception in its cause/context chain."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [error]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [current.__cause__, current.__context__]


def _strings(value: Any, depth: int, seen: set[int]) -> Iterator[str]:
    """Every str/bytes reachable from ``value`` through containers and attributes."""
    if depth > _MAX_DEPTH or id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, str):
        yield value
        return
    if isinstance(value, (bytes, bytearray)):
        yield bytes(value).decode("utf-8", "replace")
        return
    if isinstance(value, (int, float, bool, type(None), type, FrameType, TracebackType)):
        return
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key, depth + 1, seen)
            yield from _strings(item, depth + 1, seen)
        return
    if isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from _strings(item, depth + 1, seen)
        return
    if isinstance(value, BaseException):
        yield from _strings(value.args, depth + 1, seen)
    attributes = getattr(value, "__dict__", None)
    if isinstance(attributes, dict):
        yield from _strings(attributes, depth + 1, seen)
    yield repr(value)


def reachable_text(error: BaseException) -> str:
    """Everything a reporter could show about ``error`` (see the module docstring).

    Frames of the test suite itself are left out: a test's own locals hold the canary.
    """
    parts = ["".join(traceback.TracebackException.from_exception(error).format())]
    for exc in chain(error):
        for frame, _ in traceback.walk_tb(exc.__traceback__):
            if f"{os.sep}tests{os.sep}" in frame.f_code.co_filename:
                continue
            # What capture_locals records: the repr of every local of every frame.
            parts.extend(repr(value) for value in frame.f_locals.values())
        parts.extend(_strings(exc, 0, set()))
    return "\n".join(parts)


def assert_nothing_reachable(error: BaseException, *secrets: str) -> None:
    text = reachable_text(error)
    for secret in secrets:
        assert secret not in text, f"a secret is reachable from {type(error).__name__}: {error}"


def raised(call: Any) -> BaseException:
    """The exception ``call()`` raises, caught in a frame holding nothing but ``call``."""
    try:
        call()
    except Exception as exc:
        return exc
    raise AssertionError(f"{call!r} did not raise")


class ThreadRecords(logging.Handler):
    """Every record logged in the creating thread (servers in other threads log elsewhere)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.thread = threading.get_ident()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.lines.append(f"{record.name}: {record.getMessage()} {record.exc_text or ''}")


@contextlib.contextmanager
def debug_logging() -> Iterator[ThreadRecords]:
    """Every logger at DEBUG, as an app chasing a third-party problem would set it."""
    handler = ThreadRecords()
    root = logging.getLogger()
    loggers = [root] + [
        logger
        for logger in logging.root.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    saved = [(logger, logger.level, logger.disabled) for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        logger.disabled = False
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        for logger, level, disabled in saved:
            logger.setLevel(level)
            logger.disabled = disabled
