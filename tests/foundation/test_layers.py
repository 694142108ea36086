"""The package's layers: nothing imports upward.

    cli ─▶ settings ─▶ authenticator ─▶ _core ─▶ foundation
              │              ▲              ▲
              └─▶ sources ───┴──────────────┘      adapters ─▶ authenticator
    testing (the emulator) ─▶ foundation only; testing.__main__ is a command (cli layer)

``foundation`` is errors, credentials, _secret, _environ, _lazy (and other top-level
private helpers). Imports inside ``if TYPE_CHECKING:`` are annotations, not
dependencies, and are not counted; the front doors (``__init__`` of the package and of
``sources``) re-export everything and are not counted either.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import n3xt_creds

PACKAGE = Path(n3xt_creds.__file__).parent

ALLOWED = {
    "foundation": {"foundation"},
    "core": {"foundation", "core"},
    "sources": {"foundation", "core", "sources"},
    "authenticator": {"foundation", "core", "sources"},
    "adapters": {"foundation", "core", "authenticator"},
    "settings": {"foundation", "core", "sources", "authenticator", "settings"},
    "cli": {"foundation", "core", "sources", "authenticator", "settings", "testing", "cli"},
    "testing": {"foundation", "testing"},
}


# Command entry points sit at the top with the CLI: ``python -m n3xt_creds.testing`` is
# the CLI's one emulator command (issue 13), reached through the testing package.
ENTRY_POINTS = {"n3xt_creds.testing.__main__": "cli"}


def layer(module: str) -> str:
    if module in ENTRY_POINTS:
        return ENTRY_POINTS[module]
    parts = module.split(".")[1:]
    if not parts:
        return "root"
    head = parts[0]
    if head == "_core":
        return "core"
    if head in {"sources", "settings", "cli", "testing", "adapters", "authenticator"}:
        return head
    return "foundation"


def module_name(path: Path) -> str:
    parts = ["n3xt_creds", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def runtime_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target.startswith("n3xt_creds"):
                # `from . import _environ` imports a module of the package
                found.update(
                    f"{target}.{alias.name}"
                    if (PACKAGE.parent / f"{target}.{alias.name}".replace(".", "/"))
                    .with_suffix(".py")
                    .exists()
                    else target
                    for alias in node.names
                )
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("n3xt_creds"))
    return found


MODULES = sorted(
    path
    for path in PACKAGE.rglob("*.py")
    if module_name(path) not in {"n3xt_creds", "n3xt_creds.sources"}
)


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_no_module_imports_a_higher_layer(path: Path) -> None:
    here = layer(module_name(path))
    upward = sorted(
        target
        for target in runtime_imports(path)
        if layer(target) not in ALLOWED[here] and layer(target) != "root"
    )
    assert upward == [], f"{module_name(path)} ({here}) imports a higher layer: {upward}"


def test_the_layer_map_covers_every_module() -> None:
    assert {layer(module_name(path)) for path in MODULES} <= set(ALLOWED)
