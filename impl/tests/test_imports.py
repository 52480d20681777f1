"""Imports point one way: no module of a package imports, directly or not, one that imports it.

The graph is read from the source (``ast``), not from running it: every ``import`` and
``from ... import`` counts, at any depth (inside functions, under ``if TYPE_CHECKING``),
and importing a package's ``__init__`` counts as an edge to it. ``import_cycles`` takes any
package directory, so the same check serves ``conformance/wsconform``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: The packages held to it: name -> directory.
PACKAGES = {
    "rfc6455": ROOT / "impl" / "rfc6455",
    "wsconform": ROOT / "conformance" / "wsconform",
}


#: Compiled modules (and the C sources they are built from): they import nothing of ours.
COMPILED = (".so", ".pyd", ".c")


def module_names(directory: Path, package: str) -> dict[str, Path]:
    """Every module of the package: dotted name -> file (``__init__`` is the package)."""
    names = {}
    for path in sorted(directory.rglob("*")):
        if path.suffix in COMPILED:
            parts = [*path.relative_to(directory).parent.parts, path.name.split(".")[0]]
            names[".".join([package, *parts])] = path
    for path in sorted(directory.rglob("*.py")):
        parts = list(path.relative_to(directory).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join([package, *parts])] = path
    return names


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that module ``name`` imports."""
    if path.suffix in COMPILED:
        return set()
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = name.split(".")
                base = parts if is_package else parts[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            # ``from pkg import x`` imports the submodule ``pkg.x`` when there is one,
            # else an attribute of ``pkg``.
            targets = [
                f"{module}.{alias.name}" if f"{module}.{alias.name}" in known else module
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in known:  # ``import pkg.mod.attr``-like forms
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_cycles(directory: Path, package: str) -> list[list[str]]:
    """Each cycle among the package's imports, as the modules along it (first repeated)."""
    modules = module_names(directory, package)
    known = set(modules)
    graph = {name: imports_of(name, path, known) for name, path in modules.items()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        path.append(name)
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
    return cycles


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_package_has_no_import_cycle(package: str) -> None:
    cycles = import_cycles(PACKAGES[package], package)
    assert cycles == [], "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_a_cycle_is_found(tmp_path: Path) -> None:
    """The check itself: a package whose modules import each other is caught, at any depth."""
    package = tmp_path / "demo"
    package.mkdir()
    (package / "__init__.py").write_text("from .a import A\n")
    (package / "a.py").write_text("from . import b\nA = 1\n")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .c import C\n"
    )
    (package / "c.py").write_text("def f():\n    from demo.a import A\n")
    (package / "d.py").write_text("from . import a, b\n")  # imports, but no cycle
    assert import_cycles(package, "demo") == [["demo.a", "demo.b", "demo.c", "demo.a"]]


def test_importing_the_package_counts(tmp_path: Path) -> None:
    package = tmp_path / "demo"
    package.mkdir()
    (package / "__init__.py").write_text("from .version import V\nfrom .a import A\n")
    (package / "version.py").write_text("V = 1\n")
    (package / "a.py").write_text("from . import V\nA = V\n")
    assert import_cycles(package, "demo") == [["demo", "demo.a", "demo"]]
