"""A program as math for a paper (`azdsl export --to latex | markdown`).

Each instruction becomes `out ← expression`: s3 ← s0 - s1 (with a minus sign), v1 ← v1 + s1·v0,
s1 ← ⟨v0, v1⟩, m1 ← v7 ⊗ v0, ‖v‖, ⊙ for elementwise products. The notation is chosen per op
from its row in the op table (its form, its spelling and the kinds it reads); an op of a
user's (azdsl.extend) is written as a named function, softsign(v1).
LaTeX comes as an `align*` block (amsmath); Markdown as one list per component, in Unicode.
"""

from __future__ import annotations

from azdsl.language.ops import Form, Kind, LitType, Op
from azdsl.language.printer import format_literal
from azdsl.language.program import COMPONENTS, Cell, Instr, Program

MINUS = "\u2212"  # the minus sign, not a hyphen
ONES = "\U0001d7cf"  # a bold 1: the vector (or matrix) of ones

# func -> (LaTeX, Markdown); {a}, {b} the inputs. Elementwise ops read the same on every kind.
_CALLS: dict[str, tuple[str, str]] = {
    "abs": (r"\lvert {a} \rvert", "|{a}|"),
    "reciprocal": (r"1 / {a}", "1 / {a}"),
    "sin": (r"\sin {a}", "sin {a}"),
    "cos": (r"\cos {a}", "cos {a}"),
    "tan": (r"\tan {a}", "tan {a}"),
    "arcsin": (r"\arcsin {a}", "arcsin {a}"),
    "arccos": (r"\arccos {a}", "arccos {a}"),
    "arctan": (r"\arctan {a}", "arctan {a}"),
    "exp": (r"e^{{{a}}}", "exp {a}"),
    "log": (r"\ln {a}", "ln {a}"),
    "broadcast": (r"{a} \mathbf{{1}}", f"{{a}}·{ONES}"),
    "dot": (r"{a}^\top {b}", "⟨{a}, {b}⟩"),
    "outer": (r"{a} {b}^\top", "{a} ⊗ {b}"),
    "transpose": (r"{a}^\top", "{a}ᵀ"),
    "column_broadcast": (r"{a} \mathbf{{1}}^\top", f"{{a}}·{ONES}ᵀ"),
    "row_broadcast": (r"\mathbf{{1}} {a}^\top", f"{ONES}·{{a}}ᵀ"),
    "minimum": (r"\min({a}, {b})", "min({a}, {b})"),
    "maximum": (r"\max({a}, {b})", "max({a}, {b})"),
}
# Spellings that depend on the kinds read or the axis.
_HEAVISIDE = {Kind.SCALAR: (r"[{a} \ge 0]", "[{a} ≥ 0]")}
_HEAVISIDE_ELEMENTWISE = (r"[{a} > 0]", "[{a} > 0]")  # Iverson brackets, elementwise
_NORMS = {  # (input kind, axis)
    (Kind.VECTOR, None): (r"\lVert {a} \rVert", "‖{a}‖"),
    (Kind.MATRIX, None): (r"\lVert {a} \rVert_F", "‖{a}‖_F"),
    (Kind.MATRIX, 0): (r"\lVert {a} \rVert_{{\mathrm{{col}}}}", "‖{a}‖ per column"),
    (Kind.MATRIX, 1): (r"\lVert {a} \rVert_{{\mathrm{{row}}}}", "‖{a}‖ per row"),
}
_STATS = {  # mean, std: whole input, or per row
    None: (r"\operatorname{{{f}}}({a})", "{f}({a})"),
    1: (r"\operatorname{{{f}}}_{{\mathrm{{row}}}}({a})", "{f}({a}) per row"),
}
_INFIX = {
    "+": (r"{a} + {b}", "{a} + {b}"),
    "-": (r"{a} - {b}", f"{{a}} {MINUS} {{b}}"),
    "/": (r"{a} / {b}", "{a} / {b}"),
    "@": (r"{a} {b}", "{a}·{b}"),
}
_TIMES = (r"{a} \cdot {b}", "{a}·{b}")  # a scalar times anything
_ELEMENTWISE_TIMES = (r"{a} \odot {b}", "{a} ⊙ {b}")
_RANDOM = {
    "uniform": (r"\mathcal{{U}}[{lo}, {hi})", "U[{lo}, {hi})"),
    "gaussian": (r"\mathcal{{N}}({mean}, {std}^2)", "N({mean}, {std}²)"),
}
LATEX, MARKDOWN = 0, 1


def _form(op: Op) -> tuple[str, str]:
    """The op's (LaTeX, Markdown) pattern."""
    if op.form is Form.INFIX:
        if op.func == "*":
            return _TIMES if op.ins[0] is Kind.SCALAR else _ELEMENTWISE_TIMES
        return _INFIX.get(op.func, (f"{{a}} {op.func} {{b}}",) * 2)
    if op.func == "heaviside":
        return _HEAVISIDE.get(op.ins[0], _HEAVISIDE_ELEMENTWISE)
    if op.func == "norm":
        return _NORMS[(op.ins[0], op.axis)]
    if op.func in ("mean", "std"):
        latex, markdown = _STATS[op.axis]
        return (latex.replace("{f}", op.func), markdown.replace("{f}", op.func))
    if op.func in _CALLS:
        return _CALLS[op.func]
    args = ", ".join("{" + role + "}" for role in "ab"[:op.arity])  # a user's op (azdsl.extend)
    return (rf"\operatorname{{{{{op.func}}}}}({args})", f"{op.func}({args})")


def cell_name(cell: Cell, style: int) -> str:
    if style == MARKDOWN:
        return str(cell)
    symbol = {Kind.SCALAR: "s", Kind.VECTOR: r"\mathbf{v}", Kind.MATRIX: r"\mathbf{M}"}
    return f"{symbol[cell.kind]}_{{{cell.index}}}"


def _number(value: float, style: int) -> str:
    text = format_literal(LitType.FLOAT, value)
    if style == LATEX:
        if "e" in text:
            mantissa, exponent = text.split("e")
            return rf"{mantissa} \times 10^{{{int(exponent)}}}"
        return {"inf": r"\infty", "-inf": r"-\infty", "nan": r"\mathrm{NaN}"}.get(text, text)
    return {"inf": "∞", "-inf": f"{MINUS}∞"}.get(text, text)


def instruction(instr: Instr, style: int) -> str:
    """`out ← expression` for one instruction."""
    op = instr.op
    assert instr.out is not None
    arrow = r" \leftarrow " if style == LATEX else " ← "
    out = cell_name(instr.out, style)
    lits = {lit.name: (str(int(value)) if lit.type is LitType.INDEX
                       else _number(float(value), style))
            for lit, value in zip(op.literals, instr.literals, strict=True)}
    if op.form is Form.CONST:
        index = ", ".join(lits[lit.name] for lit in op.literals if lit.type is LitType.INDEX)
        if index:
            out = f"{out}[{index}]"
        return out + arrow + lits["c"]
    if op.form is Form.RANDOM:
        pattern = _RANDOM[op.func][style]
        sample = r" \sim " if style == LATEX else " ~ "
        return out + sample + pattern.format(**lits)
    names = dict(zip("ab", (cell_name(c, style) for c in instr.ins), strict=False))
    return out + arrow + _form(op)[style].format(**names)


def render(program: Program, style: int) -> str:
    """The whole program: LaTeX (`align*`) or Markdown (a list per component)."""
    lines: list[str] = []
    if style == LATEX:
        lines.append(r"\begin{align*}")
        for component, instrs in zip(COMPONENTS, program.components, strict=True):
            lines.append(rf"&\textbf{{{component.value}:}} \\")
            lines += [rf"&\quad {instruction(i, style)} \\" for i in instrs
                      if i.out is not None]
        lines[-1] = lines[-1].removesuffix(r" \\")
        lines.append(r"\end{align*}")
        return "\n".join(lines) + "\n"
    for component, instrs in zip(COMPONENTS, program.components, strict=True):
        lines += [f"**{component.value}**", ""]
        body = [f"- {instruction(i, style)}" for i in instrs if i.out is not None]
        lines += [*(body or ["- (nothing)"]), ""]
    lines.append("s0: the label (0 in Predict), s1: the prediction, v0: the features; "
                 "⊙ elementwise product, ⊗ outer product, ⟨·,·⟩ inner product, "
                 f"{ONES} all ones.")
    return "\n".join(lines) + "\n"
