"""One line of program text -> a small syntax tree, via THE grammar (grammar/azdsl.lark)."""

from __future__ import annotations

import difflib
import functools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from azdsl.language.program import COMPONENTS
from azdsl.resources import resource

# ---- the syntax tree: positions are 1-based columns of the line, `end` exclusive ------------


@dataclass(frozen=True, slots=True, eq=False)
class Node:
    col: int
    end: int


@dataclass(frozen=True, slots=True, eq=False)
class Name(Node):
    """A cell (`s3`), a function name, or the float words `inf` / `nan`."""

    text: str


@dataclass(frozen=True, slots=True, eq=False)
class Number(Node):
    text: str


@dataclass(frozen=True, slots=True, eq=False)
class Negative(Node):
    operand: Node


@dataclass(frozen=True, slots=True, eq=False)
class Binary(Node):
    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True, eq=False)
class Keyword(Node):
    name: Name
    value: Node


@dataclass(frozen=True, slots=True, eq=False)
class Call(Node):
    func: Name
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True, eq=False)
class Subscript(Node):
    base: Name
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True, eq=False)
class Header(Node):
    name: Name


@dataclass(frozen=True, slots=True, eq=False)
class Pass(Node):
    pass


@dataclass(frozen=True, slots=True, eq=False)
class Assign(Node):
    target: Node
    value: Node


Statement = Header | Pass | Assign


class SyntaxProblem(Exception):
    """A line that does not parse: a message in a user's words and the columns to underline."""

    def __init__(self, message: str, col: int, end: int) -> None:
        super().__init__(message)
        self.message, self.col, self.end = message, col, end


# ---- the grammar and its parser ---------------------------------------------------------------


def grammar_path() -> Path:
    """The grammar inside the installed package, else the repository's top-level one."""
    return resource("grammar", "azdsl.lark")


def _pos(token: Token) -> tuple[int, int]:
    col = token.column or 1
    return col, token.end_column or col + len(token)


def _name(token: Token) -> Name:
    col, end = _pos(token)
    return Name(col, end, str(token))


class _Build(Transformer[Token, Node]):
    """Runs inside the LALR parser (no tree is built), so deep input never recurses."""

    def start(self, c: list[Node]) -> Node:
        return c[0]

    def pass_(self, c: list[Token]) -> Pass:
        return Pass(0, 0)

    def header(self, c: list[Token]) -> Header:
        name, rpar = c
        return Header(_pos(name)[0], _pos(rpar)[1], _name(name))

    def assign(self, c: list[Node]) -> Assign:
        target, _, value = c
        return Assign(target.col, value.end, target, value)

    def name(self, c: list[Token]) -> Name:
        return _name(c[0])

    def number(self, c: list[Token]) -> Number:
        col, end = _pos(c[0])
        return Number(col, end, str(c[0]))

    def negative(self, c: list[Token | Node]) -> Negative:
        minus, operand = c
        assert isinstance(minus, Token) and isinstance(operand, Node)
        return Negative(_pos(minus)[0], operand.end, operand)

    def binary(self, c: list[Token | Node]) -> Binary:
        left, op, right = c
        assert isinstance(left, Node) and isinstance(right, Node)
        return Binary(left.col, right.end, str(op), left, right)

    def args(self, c: list[Node]) -> tuple[Node, ...]:
        return tuple(c)

    def keyword(self, c: list[Token | Node]) -> Keyword:
        name, _, value = c
        assert isinstance(name, Token) and isinstance(value, Node)
        return Keyword(_pos(name)[0], value.end, _name(name), value)

    def call(self, c: list[object]) -> Call:
        func, args, close = c
        assert isinstance(func, Token) and isinstance(close, Token)
        return Call(_pos(func)[0], _pos(close)[1], _name(func), _args(args))

    def subscript(self, c: list[object]) -> Subscript:
        base, args, close = c
        assert isinstance(base, Token) and isinstance(close, Token)
        return Subscript(_pos(base)[0], _pos(close)[1], _name(base), _args(args))


def _args(args: object) -> tuple[Node, ...]:
    return args if isinstance(args, tuple) else ()


@functools.cache
def _parser() -> Lark:
    return Lark(
        grammar_path().read_text(encoding="utf-8"),
        parser="lalr",
        lexer="contextual",
        transformer=_Build(),
        maybe_placeholders=True,
    )


# ---- characters no line may hold --------------------------------------------------------------

# A line ends only at a newline (errors.source_lines). Characters that other tools take for a
# line break, and controls and bidi overrides that change how a line shows, are refused
# everywhere, comments included: what an editor or a terminal shows is what azdsl reads, and
# no instruction can hide in what looks like a comment, nor a comment in what looks like code.
_LINE_BREAKS = {"\v": "vertical tab", "\f": "form feed", "\r": "carriage return",
                "\x1c": "file separator", "\x1d": "group separator",
                "\x1e": "record separator", "\x85": "next line",
                "\u2028": "line separator", "\u2029": "paragraph separator"}
UNSAFE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def unsafe_character(line: str) -> SyntaxProblem | None:
    """The first character of a line (a newline's `\\r` removed) that no program may hold."""
    found = UNSAFE.search(line)
    if found is None:
        return None
    char, col = found.group(), found.start() + 1
    code = f"U+{ord(char):04X}"
    if char in _LINE_BREAKS:
        message = (f"{code} ({_LINE_BREAKS[char]}) is not allowed: only a newline ends a "
                   "line, and other programs may show this character as a line break")
    elif unicodedata.category(char) == "Cc":
        message = f"control character {code} is not allowed"
    else:
        message = (f"{code} ({unicodedata.name(char).lower()}) is not allowed: it can make "
                   "a line show in another order than it reads")
    return SyntaxProblem(message, col, col + 1)


# ---- parsing one line -------------------------------------------------------------------------

# Lark takes ~10 us a token: a line is cut off past this many (the longest instruction,
# `v1 = norm(m0, axis=0)`, has 10), so that a megabyte-long line costs no more than a short one.
_MAX_TOKENS = 64

# Terminals as a user would name them in "expected ..." (LPAR/LSQB after a name are left out:
# "expected `(`" after every cell would only add noise).
_OPERATORS = frozenset({"PLUS", "MINUS", "STAR", "SLASH", "AT"})
_WORDS = {
    "NAME": "a name",
    "NUMBER": "a number",
    "$END": "the end of the line",
    "COMMA": "`,`",
    "COLON": "`:`",
    "RPAR": "`)`",
    "RSQB": "`]`",
}


def parse_line(code: str) -> Statement:
    """Parse one non-blank line (comments allowed). Raises SyntaxProblem."""
    parser = _parser().parse_interactive(code)
    token = None
    try:
        for count, token in enumerate(parser.iter_parse()):
            if count == _MAX_TOKENS:
                text = code.split("#", 1)[0].rstrip()
                raise SyntaxProblem("too long for one instruction (an instruction is one "
                                    "operation: `cell = expression`)", _pos(token)[0],
                                    len(text) + 1)
        result = parser.feed_eof(token)  # type: ignore[no-untyped-call]  # Lark leaves it bare
    except UnexpectedInput as e:
        e.interactive_parser = parser  # what Lark's parse() sets: `expected` from the state
        raise _problem(e, code) from None
    assert isinstance(result, Header | Pass | Assign)
    return result


def _problem(e: UnexpectedInput, code: str) -> SyntaxProblem:
    text = code.split("#", 1)[0].rstrip()
    if isinstance(e, UnexpectedCharacters):
        char = str(e.char)[:1] or "?"
        shown = f"`{char}`" if char.isprintable() and not char.isspace() else f"U+{ord(char):04X}"
        return SyntaxProblem(f"unexpected character {shown}", e.column, e.column + 1)
    if not isinstance(e, UnexpectedToken):
        return SyntaxProblem("cannot read this line", len(text) + 1, len(text) + 2)
    token = e.token
    if token.type == "$END":
        col, end, what = len(text) + 1, len(text) + 2, "end of line"
    else:
        col, end = _pos(token)
        what = f"`{shorten(token)}`"
    expected = set(e.accepts or e.expected)
    if text.endswith(":") and not text.lstrip().startswith("def"):
        headers = either([f"`def {c.value}():`" for c in COMPONENTS])
        return SyntaxProblem(f"a header reads {headers}", col, end)
    if "=" not in text and "EQUAL" in expected:
        return SyntaxProblem("missing `=`: an instruction reads `cell = expression`", col, end)
    expected.discard("EQUAL")  # after the `=`, only `axis=` could follow a name: noise
    return SyntaxProblem(f"unexpected {what}; expected {_expected(expected)}", col, end)


def _expected(terminals: set[str]) -> str:
    words = []
    if terminals >= _OPERATORS:
        words.append("an operator")
        terminals = terminals - _OPERATORS
    if {"NAME", "NUMBER"} <= terminals:
        words.append("a cell or a number")
        terminals = terminals - {"NAME", "NUMBER", "MINUS"}
    words += sorted(_WORDS[t] for t in terminals if t in _WORDS and t != "$END")
    if "$END" in terminals:
        words.append(_WORDS["$END"])
    return either(words) if words else "something else"


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice `word` likely misspells, if any (a word of over 40 letters misspells none, and
    difflib would take seconds on a megabyte-long one)."""
    if len(word) > 40:
        return None
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def shorten(text: str) -> str:
    """Source text quoted in a message: a long name or number is cut, not echoed whole."""
    return text if len(text) <= 40 else text[:36] + " ..."


def either(words: list[str]) -> str:
    """`a`, `a or b`, `a, b or c`."""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]
