"""Program text -> Program: every line through the grammar and the op table, all errors at once.

Comments are kept for `azdsl fmt`: a full-line comment belongs to the instruction or header
after it (or to the end of the program), a comment after code to that line, and comments above
the first header to `def Setup():`. A comment's text is what follows `#`, less one leading space
(further spaces stay, so aligned comments stay aligned) and trailing whitespace.
"""

from __future__ import annotations

import functools
from pathlib import Path

from azdsl.errors import CheckError, Diagnostic, ParseError, Span, source_lines
from azdsl.language.ops import on_table_change
from azdsl.language.program import (
    COMPONENTS,
    Component,
    ComponentComments,
    Instr,
    Program,
    check_for_dim,
)
from azdsl.language.spelling import Resolved, resolve
from azdsl.language.syntax import (
    Header,
    SyntaxProblem,
    closest,
    either,
    parse_line,
    shorten,
    unsafe_character,
)
from azdsl.limits import read_capped_text

__all__ = ["parse", "parse_file", "read_source"]

_COMPONENT_NAMES = {c.value: c for c in COMPONENTS}


def parse(text: str, filename: str = "<input>", dim: int | None = None) -> Program:
    """Parse program text. With `dim` (the feature size F), also check index literals against it.

    Raises ParseError (or CheckError when only `dim` is violated) listing every error found.
    """
    reader = _Reader()
    for number, line in enumerate(source_lines(text), start=1):
        reader.line(number, line)
    program = reader.program()
    problems = reader.problems
    if dim is not None:
        problems = problems + check_for_dim(program, dim)
    if problems:
        problems.sort(key=lambda d: (d.span.line, d.span.col) if d.span else (0, 0))
        error = ParseError if reader.problems else CheckError
        raise error(problems, text, filename)
    return program


def parse_file(path: str | Path, dim: int | None = None) -> Program:
    """Read and parse a program file (`-` is stdin)."""
    return parse(read_source(path), str(path), dim)


def read_source(path: str | Path) -> str:
    """A program file's text exactly as stored (limits.read_capped_text); `-` is stdin.
    Raises ParseError when it cannot be read (no program is over MAX_FILE_BYTES, and
    `azdsl check /dev/zero` has to end)."""
    try:
        return read_capped_text(path, "a program")
    except OSError as e:
        raise ParseError(f"cannot read {path}: {e.strerror or e}", filename=str(path)) from None
    except ValueError as e:
        raise ParseError(str(e), filename=str(path)) from None


@functools.lru_cache(maxsize=4096)
def _statement(code: str) -> Header | Resolved | SyntaxProblem:
    """What one line (comment removed) says. Cached: evolved programs share most lines (the
    reader passes long ones by, so that the cache holds no megabytes)."""
    try:
        stmt = parse_line(code)
        return stmt if isinstance(stmt, Header) else resolve(stmt, code)
    except SyntaxProblem as problem:
        problem.__context__ = None  # kept in the cache: hold no frames, nor Lark's parser
        return problem.with_traceback(None)


on_table_change(_statement.cache_clear)  # a line's meaning changes with the op table


class _Reader:
    """Collects instructions per component, comments and problems, one line at a time."""

    def __init__(self) -> None:
        self.components: dict[Component, list[Instr]] = {c: [] for c in COMPONENTS}
        self.before: dict[Component, tuple[str, ...]] = {}  # comments above each header
        self.trailing: dict[Component, str | None] = {}  # comment after each header
        self.header_lines: dict[Component, int] = {}
        self.current: Component | None = None
        self.lost = False  # after a bad header: check lines, but place them nowhere
        self.outside_reported = False
        self.pending: list[str] = []  # full-line comments waiting for their line
        self.problems: list[Diagnostic] = []

    def line(self, number: int, line: str) -> None:
        unsafe = unsafe_character(line)
        if unsafe is not None:
            self.problem(unsafe.message, Span(number, unsafe.col, unsafe.end))
            if "#" not in line[:unsafe.col - 1]:  # in the code: nothing more to say of it
                self.pending = []
                return
        code, hash_, comment = line.partition("#")
        trailing = _comment_text(comment) if hash_ else None
        if not code.strip():
            if trailing is not None:
                self.pending.append(trailing)
            return
        span = Span(number, len(code) - len(code.lstrip()) + 1, len(code.rstrip()) + 1)
        resolved = _statement(code) if len(code) <= 200 else _statement.__wrapped__(code)
        if isinstance(resolved, Header):
            self.header(resolved.name.text, number, span, trailing)
            return
        if isinstance(resolved, SyntaxProblem):
            self.problem(resolved.message,
                         Span(number, resolved.col, max(resolved.end, resolved.col + 1)))
            self.pending = []
            return
        instr = Instr(resolved.op.code, resolved.out, resolved.ins, resolved.literals, span,
                      tuple(self.pending), trailing)
        self.pending = []
        if self.current is not None and not self.lost:
            self.components[self.current].append(instr)
        elif not self.lost and not self.outside_reported:
            self.outside_reported = True
            self.problem("instruction outside a component: put it under " + either(
                [f"`def {c.value}():`" for c in COMPONENTS]), span)

    def header(self, name: str, number: int, span: Span, trailing: str | None) -> None:
        component = _COMPONENT_NAMES.get(name)
        message = None
        if component is None:
            close = closest(name, _COMPONENT_NAMES)
            message = (f"unknown component `{shorten(name)}`; expected "
                       + either([f"`{c.value}`" for c in COMPONENTS])
                       + (f", did you mean `{close}`?" if close else ""))
        elif component in self.header_lines:
            message = (f"`def {name}():` appears twice (first on line "
                       f"{self.header_lines[component]})")
        elif self.current is not None and component.index < self.current.index:
            message = (f"`def {name}():` must come before `def {self.current.value}():` "
                       f"(line {self.header_lines[self.current]})")
        self.lost = message is not None
        if message is not None:
            self.problem(message, span)
        elif component is not None:
            # Comments above the first header open the file: they stay above `def Setup():`.
            self.before[component if self.header_lines else COMPONENTS[0]] = tuple(self.pending)
            self.trailing[component] = trailing
            self.header_lines[component] = number
            self.current = component
        self.pending = []

    def problem(self, message: str, span: Span) -> None:
        self.problems.append(Diagnostic(message, span))

    def program(self) -> Program:
        comments = tuple(ComponentComments(self.before.get(c, ()), self.trailing.get(c))
                         for c in COMPONENTS)
        if not any(c.before_header or c.header_trailing is not None for c in comments):
            comments = ()
        setup, predict, learn = (tuple(self.components[c]) for c in COMPONENTS)
        return Program(setup, predict, learn, comments, tuple(self.pending))


def _comment_text(after_hash: str) -> str:
    text = after_hash.rstrip()
    return text[1:] if text.startswith(" ") else text
