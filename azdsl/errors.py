"""User-facing errors: a position, a message in a user's words, and caret rendering."""

from __future__ import annotations

from dataclasses import dataclass


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
        if self.span is None:
            where = "azdsl" if filename == "<input>" else filename
            return f"{where}: error: {self.message}"
        head = f"{filename}:{self.span.line}:{self.span.col}: error: {self.message}"
        lines = source.splitlines() if source is not None else []
        if not 1 <= self.span.line <= len(lines):
            return head
        text = lines[self.span.line - 1].expandtabs(1)
        width = max(1, (self.span.end_col or self.span.col + 1) - self.span.col)
        caret = " " * (self.span.col - 1) + "^" * width
        return f"{head}\n  {text}\n  {caret}"


class AzdslError(Exception):
    """Base of every error azdsl reports to a user (never a traceback)."""

    def __init__(self, diagnostics: list[Diagnostic] | str, source: str | None = None,
                 filename: str = "<input>") -> None:
        if isinstance(diagnostics, str):
            diagnostics = [Diagnostic(diagnostics)]
        self.diagnostics = diagnostics
        self.source = source
        self.filename = filename
        super().__init__(self.render())

    def render(self) -> str:
        return "\n".join(d.render(self.source, self.filename) for d in self.diagnostics)

    def with_file(self, source: str, filename: str) -> AzdslError:
        """The same error, attributed to a file (keeps the subclass)."""
        return type(self)(self.diagnostics, source, filename)


class ParseError(AzdslError):
    """The text is not a program: syntax, unknown names, wrong operand kinds."""


class CheckError(AzdslError):
    """A well-formed program that does not fit its context (index out of range for F...)."""


class ConfigError(AzdslError):
    """A wrong experiment configuration, task option or data file."""
