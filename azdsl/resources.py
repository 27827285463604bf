"""Files shipped with the package (the grammar, the docs, the examples): inside an installed
wheel they sit in the package folder; in a source checkout, at the repository's top level."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def resource(*parts: str) -> Path:
    """The shipped file or folder `parts` (e.g. "examples", "demo.toml"): the wheel's copy
    inside the package if there is one, else the repository's."""
    packaged = _PACKAGE.joinpath(*parts)
    return packaged if packaged.exists() else _PACKAGE.parent.joinpath(*parts)


def first_comment(file: Path) -> str:
    """A shipped file's first `#` line, without the marks: a Markdown page's title, an
    example's one-line description (a Python module's: its docstring's first line)."""
    lines = file.read_text(encoding="utf-8").splitlines()
    if file.suffix == ".py":
        return lines[0].strip().strip('"').strip() if lines else ""
    for line in lines:
        if line.startswith("#"):
            return line.lstrip("#").strip()
    return ""
