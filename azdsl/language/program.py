"""The program model: cells, instructions and programs as immutable, hashable values.

Source spans and comments ride along for error messages and `azdsl fmt` but take no part in
equality or hashing. Float literals compare by their float64 bit pattern (so -0.0 != 0.0 and
nan == nan), which is what a lossless round trip through text needs.
"""

from __future__ import annotations

import enum
import math
import struct
from dataclasses import dataclass, field

from azdsl.errors import CheckError, Diagnostic, Span
from azdsl.language.ops import NO_OP, OPS_BY_CODE, Kind, LitType, Op

Literal = float | int


class Component(enum.Enum):
    """The three component functions, in their fixed order."""

    SETUP = "Setup"
    PREDICT = "Predict"
    LEARN = "Learn"

    @property
    def index(self) -> int:
        return _COMPONENT_INDEX[self]


COMPONENTS: tuple[Component, ...] = (Component.SETUP, Component.PREDICT, Component.LEARN)
_COMPONENT_INDEX = {c: i for i, c in enumerate(COMPONENTS)}


@dataclass(frozen=True)
class Cell:
    """A memory cell such as `s3`, `v0` or `m1`."""

    kind: Kind
    index: int

    def __str__(self) -> str:
        return f"{self.kind.prefix}{self.index}"

    def __repr__(self) -> str:
        return f"Cell({self})"

    @staticmethod
    def parse(text: str) -> Cell:
        """`s3` -> Cell(SCALAR, 3). Raises ValueError on anything else."""
        kinds = {k.prefix: k for k in Kind}
        if len(text) < 2 or text[0] not in kinds or not text[1:].isdigit():
            raise ValueError(f"not a cell name: {text!r}")
        if len(text) > 2 and text[1] == "0":
            raise ValueError(f"not a cell name: {text!r}")
        return Cell(kinds[text[0]], int(text[1:]))


LABEL = Cell(Kind.SCALAR, 0)
PREDICTION = Cell(Kind.SCALAR, 1)
FEATURES = Cell(Kind.VECTOR, 0)
RESERVED_OUTPUTS: frozenset[Cell] = frozenset({LABEL, FEATURES})  # never written by mutations

_CANONICAL_NAN_BITS = struct.unpack("<Q", struct.pack("<d", math.nan))[0]


def literal_key(value: Literal) -> int | tuple[str, int]:
    """A hashable key that tells floats apart by bits (nan is one value, -0.0 is not 0.0)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    f = float(value)
    if math.isnan(f):
        return ("f", _CANONICAL_NAN_BITS)
    return ("f", struct.unpack("<Q", struct.pack("<d", f))[0])


@dataclass(frozen=True, eq=False)
class Instr:
    """One instruction: an op, its output cell, input cells and literals (in table order)."""

    code: int
    out: Cell | None = None
    ins: tuple[Cell, ...] = ()
    literals: tuple[Literal, ...] = ()
    span: Span | None = field(default=None, repr=False)
    leading_comments: tuple[str, ...] = field(default=(), repr=False)  # full-line, above
    trailing_comment: str | None = field(default=None, repr=False)

    @property
    def op(self) -> Op:
        return OPS_BY_CODE[self.code]

    def key(self) -> tuple[object, ...]:
        return (self.code, self.out, self.ins, tuple(literal_key(x) for x in self.literals))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Instr) and self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.key())

    def cells(self) -> tuple[Cell, ...]:
        return self.ins + ((self.out,) if self.out is not None else ())

    def without_comments(self) -> Instr:
        return Instr(self.code, self.out, self.ins, self.literals)


PASS = Instr(NO_OP.code)


@dataclass(frozen=True)
class ComponentComments:
    """Comments around a component header (kept by `azdsl fmt`, ignored by equality)."""

    before_header: tuple[str, ...] = ()
    header_trailing: str | None = None


@dataclass(frozen=True)
class Program:
    """Setup, Predict and Learn as tuples of instructions."""

    setup: tuple[Instr, ...] = ()
    predict: tuple[Instr, ...] = ()
    learn: tuple[Instr, ...] = ()
    header_comments: tuple[ComponentComments, ...] = field(default=(), compare=False, repr=False)
    end_comments: tuple[str, ...] = field(default=(), compare=False, repr=False)

    def component(self, component: Component) -> tuple[Instr, ...]:
        return (self.setup, self.predict, self.learn)[component.index]

    @property
    def components(self) -> tuple[tuple[Instr, ...], tuple[Instr, ...], tuple[Instr, ...]]:
        return (self.setup, self.predict, self.learn)

    def replace_component(self, component: Component, instrs: tuple[Instr, ...]) -> Program:
        parts = list(self.components)
        parts[component.index] = instrs
        return Program(parts[0], parts[1], parts[2])

    def instructions(self) -> tuple[Instr, ...]:
        return self.setup + self.predict + self.learn

    def sizes(self) -> tuple[int, int, int]:
        return (len(self.setup), len(self.predict), len(self.learn))

    def without_comments(self) -> Program:
        setup, predict, learn = (tuple(i.without_comments() for i in c) for c in self.components)
        return Program(setup, predict, learn)

    def memory_needs(self) -> dict[Kind, int]:
        """Cells per kind this program needs: highest index used + 1, at least s0, s1, v0."""
        needs = {Kind.SCALAR: 2, Kind.VECTOR: 1, Kind.MATRIX: 0}
        for instr in self.instructions():
            for cell in instr.cells():
                needs[cell.kind] = max(needs[cell.kind], cell.index + 1)
        return needs


def check_for_dim(program: Program, dim: int) -> list[Diagnostic]:
    """Diagnostics for index literals that do not fit a task with F = dim."""
    problems = []
    for instr in program.instructions():
        indices = [int(value) for lit, value in zip(instr.op.literals, instr.literals,
                                                     strict=True) if lit.type is LitType.INDEX]
        for value in indices:
            if not 0 <= value < dim:
                cell = str(instr.out) if instr.out is not None else "?"
                where = f"{cell}[{', '.join(map(str, indices))}]"
                problems.append(
                    Diagnostic(f"`{where}`: index {value} is out of range for F = {dim}",
                               instr.span)
                )
    return problems


def validate(program: Program, dim: int | None = None) -> None:
    """Raise CheckError unless every instruction fits its op row (and F, when given)."""
    problems: list[Diagnostic] = []
    for instr in program.instructions():
        op = instr.op
        if (instr.out.kind if instr.out else None) != op.out:
            problems.append(Diagnostic(f"op {op.code} writes {op.out}", instr.span))
        if tuple(c.kind for c in instr.ins) != op.ins:
            problems.append(Diagnostic(f"op {op.code} reads {op.ins}", instr.span))
        if len(instr.literals) != len(op.literals):
            problems.append(Diagnostic(f"op {op.code} takes {len(op.literals)} literals",
                                       instr.span))
    if dim is not None:
        problems += check_for_dim(program, dim)
    if problems:
        raise CheckError(problems)
