"""User-facing errors: a position, a message in a user's words, and caret rendering."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

# The most errors a command prints for one file; the rest are counted. Nobody reads 200,000.
SHOWN = 100
# The most characters of a source line echoed under a message: a longer line is cut around
# the caret, with `...` where it was cut.
_WINDOW = 120


def source_lines(text: str) -> list[str]:
    """The lines of program (or config) text. A line ends only at `\\n`, and a `\\r` just before
    it belongs to the line end. Unlike str.splitlines, U+2028, U+0085, `\\v`, `\\f` and a lone
    `\\r` end no line here; the parser rejects them, so that azdsl and every editor agree on
    where each line of an accepted program ends."""
    *ended, last = text.split("\n")
    return [line.removesuffix("\r") for line in ended] + [last]


@dataclass(frozen=True)
class Span:
    """A 1-based source position; `end_col` is exclusive (the caret covers col..end_col-1)."""

    line: int
    col: int
    end_col: int | None = None


@dataclass(frozen=True)
class Diagnostic:
    message: str
    span: Span | None = None

    def render(self, source: str | None, filename: str = "<input>") -> str:
        """`file:line:col: error: message`, then the source line and a caret under the culprit."""
        return self.render_in(source_lines(source) if source is not None else [], filename)

    def render_in(self, lines: Sequence[str], filename: str = "<input>") -> str:
        """`render`, given the source's lines (split once for a whole list of errors)."""
        if self.span is None:
            where = "azdsl" if filename == "<input>" else filename
            return f"{where}: error: {self.message}"
        head = f"{filename}:{self.span.line}:{self.span.col}: error: {self.message}"
        if not 1 <= self.span.line <= len(lines):
            return head
        start = self.span.col - 1
        end = max(start + 1, (self.span.end_col or 0) - 1)
        text, start, end = _excerpt(lines[self.span.line - 1], start, end)
        return f"{head}\n  {text}\n  {' ' * start}{'^' * (end - start)}"


def _excerpt(line: str, start: int, end: int) -> tuple[str, int, int]:
    """At most _WINDOW characters of `line` around columns start..end (0-based, end exclusive),
    printable: a tab shows as one space and any other unprintable character (an escape
    sequence, a bidi override) as `?`, so the caret stays aligned and the terminal unharmed.
    Returns the text and the caret's columns in it."""
    lo = max(0, min(start - _WINDOW // 3, len(line) - _WINDOW))
    hi = lo + _WINDOW
    text = "".join(c if c.isprintable() else " " if c == "\t" else "?" for c in line[lo:hi])
    left = "..." if lo > 0 else ""
    right = "..." if hi < len(line) else ""
    start = max(start, lo) - lo + len(left)
    end = max(start + 1, min(end, hi) - lo + len(left))
    return left + text + right, start, end


class AzdslError(Exception):
    """Base of every error azdsl reports to a user (never a traceback)."""

    def __init__(self, diagnostics: list[Diagnostic] | str, source: str | None = None,
                 filename: str = "<input>") -> None:
        if isinstance(diagnostics, str):
            diagnostics = [Diagnostic(diagnostics)]
        self.diagnostics = diagnostics
        self.source = source
        self.filename = filename
        super().__init__()

    def __str__(self) -> str:  # rendered when asked, not when raised: a caller may drop it
        return self.render()

    def __reduce__(self) -> tuple[object, ...]:  # pickles (to and from workers) by its fields
        return type(self), (self.diagnostics, self.source, self.filename)

    def render(self, limit: int | None = None) -> str:
        """Every diagnostic, in order; with `limit`, the first `limit` and a count of the rest."""
        shown = self.diagnostics if limit is None else self.diagnostics[:limit]
        lines = source_lines(self.source) if self.source is not None else []
        text = "\n".join(d.render_in(lines, self.filename) for d in shown)
        if hidden := len(self.diagnostics) - len(shown):
            where = "" if self.filename == "<input>" else f" in {self.filename}"
            text += f"\n... and {hidden} more error{'s' if hidden > 1 else ''}{where}"
        return text

    def report(self) -> None:
        """What a command prints: the first SHOWN errors, on stderr."""
        print(self.render(SHOWN), file=sys.stderr)

    def with_file(self, source: str, filename: str) -> AzdslError:
        """The same error, attributed to a file (keeps the subclass)."""
        return type(self)(self.diagnostics, source, filename)


class ParseError(AzdslError):
    """The text is not a program: syntax, unknown names, wrong operand kinds."""


class CheckError(AzdslError):
    """A well-formed program that does not fit its context (index out of range for F...)."""


class ConfigError(AzdslError):
    """A wrong experiment configuration, task option or data file."""
