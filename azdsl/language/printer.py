"""Program -> canonical text (docs/language.md, "Canonical form"), the inverse of parse.py."""

from __future__ import annotations

from azdsl.language.ops import LitType
from azdsl.language.program import COMPONENTS, ComponentComments, Instr, Literal, Program
from azdsl.language.syntax import UNSAFE

__all__ = ["format_instr", "format_literal", "unparse"]

_INDENT = "  "
_NO_COMMENTS = ComponentComments()


def format_literal(type_: LitType, value: Literal) -> str:
    """Indices as ints; floats as the shortest text that reads back to the same float64."""
    return str(int(value)) if type_ is LitType.INDEX else repr(float(value))


def format_instr(instr: Instr) -> str:
    """One instruction in its canonical spelling, e.g. `v1 = norm(m0, axis=0)`."""
    op = instr.op
    literals = [format_literal(lit.type, value)
                for lit, value in zip(op.literals, instr.literals, strict=True)]
    return op.spelling(str(instr.out), [str(c) for c in instr.ins], literals)


def unparse(program: Program, comments: bool = True) -> str:
    """The canonical text of a program; with `comments`, the ones it was parsed with."""
    lines: list[str] = []
    headers = program.header_comments if comments else ()
    for component, instrs in zip(COMPONENTS, program.components, strict=True):
        around = headers[component.index] if component.index < len(headers) else _NO_COMMENTS
        lines += [_comment(c) for c in around.before_header]
        lines.append(f"def {component.value}():" + _trailing(around.header_trailing))
        for instr in instrs:
            if comments:
                lines += [_INDENT + _comment(c) for c in instr.leading_comments]
            text = _INDENT + format_instr(instr)
            lines.append(text + _trailing(instr.trailing_comment) if comments else text)
    if comments:
        lines += [_INDENT + _comment(c) for c in program.end_comments]
    return "\n".join(lines) + "\n"


def _comment(text: str) -> str:
    # `# text`; banners such as `#####` or `## heading` keep their hashes together. A comment
    # made in code may hold line breaks or controls, which no line can: they become spaces.
    text = UNSAFE.sub(" ", text).rstrip()
    return "#" + text if not text or text.startswith("#") else "# " + text


def _trailing(text: str | None) -> str:
    return "" if text is None else "  " + _comment(text)
