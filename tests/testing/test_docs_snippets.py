"""Every Python snippet of README.md and docs/ runs, or at least could.

* Every ``python`` block compiles, and the blocks of a page, read in order as one
  module, use no name they never define or import (ruff's F821): no top-level
  ``await``, no missing ``from n3xt_creds.settings import SourceRegistry``.
* Blocks that define ``test_*`` functions are executed and each test is called with the
  pytest fixtures it names (``n3xt_emulator``, ``n3xt_app_env``, ``monkeypatch``...).
* Blocks marked ``<!-- runnable -->`` are executed as they are, offline (the client
  pages' examples are also checked for their output in
  tests/authenticator/test_docs_examples.py).
* Blocks marked ``<!-- signature -->`` list a call signature, not code: skipped.
"""

from __future__ import annotations

import doctest
import inspect
import re
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"(<!-- (?:runnable|signature) -->\n)?```python\n(.*?)```", re.DOTALL)
RUFF = Path(sys.executable).parent / "ruff"


def blocks(page: Path) -> list[tuple[bool, str]]:
    """``(runnable, code)`` of each python block; ``<!-- signature -->`` blocks (an API's
    call signature, like ``Authenticator(source, *, token_url, ...)``) are not code."""
    return [
        ("runnable" in mark, code)
        for mark, code in BLOCK.findall(page.read_text(encoding="utf-8"))
        if "signature" not in mark
    ]


# Pages whose runnable examples other tests run (and check the output of): the client
# pages and shared-cache.md in tests/authenticator/test_docs_examples.py, observability.md
# in tests/authenticator/test_observability_docs.py (each in its own interpreter).
RUN_ELSEWHERE = {
    "docs/clients-httpx.md",
    "docs/clients-requests.md",
    "docs/clients-other.md",
    "docs/shared-cache.md",
    "docs/observability.md",
}


def as_source(block: str) -> str:
    """The code of a block (dedented: a block may sit in a list item); for an interactive
    session (``>>>``), its input lines."""
    block = textwrap.dedent(block)
    if not block.lstrip().startswith(">>>"):
        return block
    return "".join(example.source for example in doctest.DocTestParser().get_examples(block))


SNIPPETS = [
    (f"{page.relative_to(ROOT)}#{number}", runnable, code)
    for page in PAGES
    for number, (runnable, code) in enumerate(blocks(page), 1)
]


@pytest.mark.parametrize(
    "page", [p for p in PAGES if blocks(p)], ids=lambda p: str(p.relative_to(ROOT))
)
def test_page_snippets_compile_and_define_every_name(page: Path) -> None:
    module = ""
    for number, (_, block) in enumerate(blocks(page), 1):
        code = as_source(block)
        compile(code, f"{page.name}#{number}", "exec")  # a SyntaxError names the block
        module += f"# --- block {number}\n{code}\n"
    result = subprocess.run(
        [
            str(RUFF),
            "check",
            "--no-cache",
            "--isolated",
            "--select",
            "F821",
            "--output-format",
            "concise",
            "--stdin-filename",
            page.with_suffix(".py").name,
            "-",
        ],
        input=module,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"{page.name}: undefined names:\n{result.stdout}"


@pytest.mark.parametrize(
    ("where", "code"),
    [(w, c) for w, _, c in SNIPPETS if re.search(r"^def test_\w+\(", c, re.MULTILINE)],
)
def test_snippets_that_are_tests_pass(where: str, code: str, request: pytest.FixtureRequest):
    namespace: dict[str, object] = {"__name__": "__docs_test__"}
    exec(compile(code, where, "exec"), namespace)
    tests = [v for k, v in namespace.items() if k.startswith("test_") and callable(v)]
    assert tests
    for test in tests:
        names = inspect.signature(test).parameters
        test(**{name: request.getfixturevalue(name) for name in names})


@pytest.mark.parametrize(
    ("where", "code"),
    [(w, c) for w, runnable, c in SNIPPETS if runnable and w.split("#")[0] not in RUN_ELSEWHERE],
)
def test_runnable_snippets_run(where: str, code: str, capsys: pytest.CaptureFixture[str]):
    exec(compile(code, where, "exec"), {"__name__": "__docs_example__"})
    capsys.readouterr()


SHELL_BLOCK = re.compile(
    r"<!-- shell: runs in tests/testing/test_docs_snippets.py -->\n```sh\n(.*?)```", re.DOTALL
)


@pytest.mark.aws
def test_aws_trying_it_locally_runs_as_written(tmp_path: Path) -> None:
    (script,) = SHELL_BLOCK.findall((ROOT / "docs" / "aws.md").read_text(encoding="utf-8"))
    moto_port, emulator_port = _free_port(), _free_port()
    script = script.replace("5000", str(moto_port)).replace("8400", str(emulator_port))
    bin_dir = str(Path(sys.executable).parent)
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
    }
    result = subprocess.run(
        ["bash", "-c", f"set -e\ntrap 'kill $(jobs -p) 2>/dev/null' EXIT\n{script}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[ok  ] token" in result.stdout
    assert result.stdout.rstrip().endswith("OK")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
