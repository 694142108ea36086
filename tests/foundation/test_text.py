"""escape_controls: the one helper for outside text in logs and messages."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from n3xt_creds._text import escape_controls


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("client-1", "client-1"),
        ("a\r\nFAKE LOG LINE", "a\\r\\nFAKE LOG LINE"),
        ("\x1b[2Jcleared", "\\x1b[2Jcleared"),
        ("tab\there", "tab\\there"),
        ("del\x7f c1\x85", "del\\x7f c1\\x85"),
        ("line\u2028sep", "line\\u2028sep"),
        ("bidi\u202eevil", "bidi\\u202eevil"),
        ("café-客户", "café-客户"),  # printable text of any script stays readable
    ],
)
def test_control_characters_are_escaped(raw: str, shown: str) -> None:
    assert escape_controls(raw) == shown


def test_limit_cuts_and_marks_the_cut() -> None:
    assert escape_controls("x" * 500, 10) == "x" * 10 + "..."
    assert escape_controls("short", 10) == "short"


def test_non_strings_are_converted() -> None:
    assert escape_controls(ValueError("bad\nthing")) == "bad\\nthing"


@given(st.text(), st.integers(min_value=0, max_value=50) | st.none())
def test_result_is_always_one_printable_line(text: str, limit: int | None) -> None:
    result = escape_controls(text, limit)
    assert result.isprintable()
    assert "\n" not in result and "\r" not in result
