"""Imports among azdsl's modules go one way: no module depends on itself through others.

Every import statement that can run counts, at module level or inside a function: an import
moved into a function still makes its module call into the other one, and it is the usual way
a circle is hidden from the interpreter (commands/_scale <-> commands/evolve and parallel <->
parallel_local were circles of that kind). Imports under `if TYPE_CHECKING:` never run and
only name types for annotations, so they do not count. Neither does the package's
__init__.py, which every import of a submodule runs first: it only re-exports the public API.
"""

from __future__ import annotations

import ast
from pathlib import Path

import azdsl

PACKAGE = Path(azdsl.__file__).parent


def modules(package: Path) -> dict[str, Path]:
    """Dotted name -> file of every module of a package folder."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


class _Imports(ast.NodeVisitor):
    """The modules of `known` that a module's import statements name."""

    def __init__(self, name: str, is_package: bool, known: dict[str, Path]) -> None:
        self.package = name if is_package else name.rpartition(".")[0]
        self.known = known
        self.found: set[str] = set()

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
                isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"):
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:  # relative: from the package, up level - 1 packages
            parts = self.package.split(".")[: len(self.package.split(".")) - node.level + 1]
            base = ".".join([*parts, *([node.module] if node.module else [])])
        for alias in node.names:
            self._add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in self.known else base)

    def _add(self, name: str) -> None:
        while name and name not in self.known:  # `import a.b.c` of a name inside a.b
            name = name.rpartition(".")[0]
        if name:
            self.found.add(name)


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (the package's own name excluded)."""
    known = modules(package)
    root = package.name
    graph = {}
    for name, path in known.items():
        visitor = _Imports(name, path.name == "__init__.py", known)
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        graph[name] = visitor.found - {name, root}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A circle of imports (its first module repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the path being walked, 2: done (no circle below)
    path: list[str] = []

    def walk(name: str) -> list[str] | None:
        state[name] = 1
        path.append(name)
        for dep in sorted(graph[name]):
            if state.get(dep) == 1:
                return [*path[path.index(dep):], dep]
            if dep not in state and (cycle := walk(dep)) is not None:
                return cycle
        path.pop()
        state[name] = 2
        return None

    for name in sorted(graph):
        if name not in state and (cycle := walk(name)) is not None:
            return cycle
    return None


def test_azdsl_modules_import_one_way() -> None:
    graph = import_graph(PACKAGE)
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])
    # Both kinds of import are seen: module level, and in a function (make_pool's).
    assert "azdsl.scale.islands" in graph["azdsl.scale.parallel"]
    assert "azdsl.scale.local_pool" in graph["azdsl.scale.parallel"]


def test_a_circle_through_a_function_level_import_is_found(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("from pkg.a import f\n")
    (package / "a.py").write_text("from pkg.sub import b\n\ndef f():\n    return b\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import c\n"
        "def g():\n    from .. import a\n    return a\n")
    (package / "c.py").write_text("import pkg.sub.b\n")
    graph = import_graph(package)
    assert graph["pkg.c"] == {"pkg.sub.b"} and graph["pkg.sub.b"] == {"pkg.a"}
    assert find_cycle(graph) == ["pkg.a", "pkg.sub.b", "pkg.a"]
    (package / "sub" / "b.py").write_text("from typing import TYPE_CHECKING\n"
                                          "if TYPE_CHECKING:\n    from pkg import a\n")
    assert find_cycle(import_graph(package)) is None  # a type-only import is no circle
