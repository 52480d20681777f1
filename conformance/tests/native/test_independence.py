"""The judge must not depend on what it judges: nothing in the native engine imports rfc6455."""

from __future__ import annotations

import ast
from pathlib import Path

import wsconform.native

PACKAGE = Path(wsconform.native.__file__).parent


def imported_modules(source: str) -> set[str]:
    """Every module an ``import`` or ``from ... import`` statement names, at any depth."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            found.add(node.module)
    return found


def test_native_engine_never_imports_rfc6455() -> None:
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 10
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(
            m for m in imported_modules(path.read_text("utf-8")) if m.split(".")[0] == "rfc6455"
        )
        for path in files
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_import_walk_sees_nested_and_aliased_imports() -> None:
    source = "def f():\n    import rfc6455.frame as x\n    from rfc6455 import connection\n"
    assert imported_modules(source) == {"rfc6455.frame", "rfc6455"}
