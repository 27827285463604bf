"""Expand an op row's statement template (ops.py mini-language) into a backend's source lines.

Codegen and the VM both call `expand`, each with its own way of naming cells and literals, so
ops.py stays the single source of truth for what an op computes in compiled code.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from azdsl.language.ops import Kind, Literal, Op

# cell(role, kind, indices) -> expression; role is "O", "A" or "B", indices the expanded
# index expressions (empty for a scalar cell).
CellRenderer = Callable[[str, Kind, tuple[str, ...]], str]
# literal(row literal, position in op.literals) -> expression.
LiteralRenderer = Callable[[Literal, int], str]

_TOKEN = re.compile(
    r"(?P<cell>\b[OAB]\b)(?:\[(?P<index>[^\]]*)\])?"
    r"|\$(?P<lit>[A-Za-z_]\w*)"
    r"|(?P<name>(?<![\w.])[A-Za-z_]\w*)"
)
_KEYWORDS = frozenset({"for", "in", "range", "if", "else", "abs", "np", "pass"})


def _roles(op: Op) -> dict[str, Kind]:
    roles = dict(zip(("A", "B"), op.ins, strict=False))
    if op.out is not None:
        roles["O"] = op.out
    return roles


def expand(
    op: Op,
    cell: CellRenderer,
    literal: LiteralRenderer,
    names: Mapping[str, str] | None = None,
) -> list[str]:
    """The op's template as source lines (relative indentation kept, no trailing newline).

    `names` renames free identifiers such as `KEY`, `F`, `tv`, `tm` or a helper; the rest are
    kept as written. Raises ValueError for a cell role or literal the op does not have.
    """
    if op.template == "pass":
        return []
    roles = _roles(op)
    lits = {lit.name: (lit, pos) for pos, lit in enumerate(op.literals)}
    rename = dict(names or {})

    def lit_expr(name: str) -> str:
        if name not in lits:
            raise ValueError(f"op {op.code}: template uses unknown literal ${name}")
        return literal(*lits[name])

    def index_expr(text: str) -> str:
        return _TOKEN.sub(lambda m: sub(m), text.strip())

    def sub(match: re.Match[str]) -> str:
        if match.group("cell"):
            role = match.group("cell")
            if role not in roles:
                raise ValueError(f"op {op.code}: template uses {role}, which the op lacks")
            index = match.group("index")
            parts = tuple(index_expr(p) for p in index.split(",")) if index else ()
            return cell(role, roles[role], parts)
        if match.group("lit"):
            return lit_expr(match.group("lit"))
        name = match.group("name")
        return rename.get(name, name)

    return [_TOKEN.sub(sub, line) for line in op.template.splitlines()]


def free_names(op: Op) -> frozenset[str]:
    """Identifiers a template uses besides cells, literals, keywords and `np` attributes:
    its locals (acc, k, ...), F, KEY, scratch arrays and helpers. Backends must not shadow
    them with their own variables."""
    found: set[str] = set()
    for match in _TOKEN.finditer(op.template):
        name = match.group("name")
        if name and name not in _KEYWORDS:
            found.add(name)
    return frozenset(found)
