"""The runnable examples in the client docs run, as written, against the emulator."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGES = [
    "clients-httpx.md",
    "clients-requests.md",
    "clients-other.md",
    "deployment.md",
    "shared-cache.md",
]
RUNNABLE = re.compile(r"<!-- runnable -->\n```python\n(.*?)```", re.DOTALL)


def examples() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for number, code in enumerate(RUNNABLE.findall((DOCS / page).read_text()), 1):
            found.append((f"{page}#{number}", code))
    return found


@pytest.mark.parametrize(("where", "code"), examples(), ids=[w for w, _ in examples()])
def test_runnable_example(where: str, code: str, capsys: pytest.CaptureFixture[str]) -> None:
    for module in re.findall(r"^import (\w+)", code, re.MULTILINE):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{where} needs {module}, which is not installed")
    exec(compile(code, where, "exec"), {"__name__": "__docs_example__"})
    printed = capsys.readouterr().out
    assert "200" in printed or "'ok': True" in printed, printed


def test_every_client_page_has_a_runnable_example() -> None:
    assert {where.split("#")[0] for where, _ in examples()} == set(PAGES)
