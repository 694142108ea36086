"""The retry-policy snippets of docs/vault.md and docs/aws.md run as written (they build a
source; building one makes no network call)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def snippets() -> list[tuple[str, str]]:
    found = []
    for page in ("vault.md", "aws.md"):
        for number, code in enumerate(BLOCK.findall((DOCS / page).read_text()), 1):
            if "RetryPolicy(" in code:
                found.append((f"{page}#{number}", code))
    return found


@pytest.mark.parametrize(("where", "code"), snippets(), ids=[w for w, _ in snippets()])
def test_retry_snippet_builds_its_source(where: str, code: str) -> None:
    namespace: dict[str, object] = {"__name__": "__docs_example__"}
    exec(compile(code, where, "exec"), namespace)
    source = namespace["source"]
    assert source.retry.max_attempts in (2, 3)  # type: ignore[attr-defined]


def test_both_pages_show_the_retry_policy() -> None:
    assert {where.split("#")[0] for where, _ in snippets()} == {"vault.md", "aws.md"}
