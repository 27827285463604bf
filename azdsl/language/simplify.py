"""Dead-code removal and canonical renaming of cells, so equivalent programs print the same.

Dead instructions (liveness.py) and `pass` are dropped; then the non-reserved cells of each
kind are renumbered in order of first appearance (Setup, Predict, Learn; within an instruction
in reading order: output, then inputs), keeping s0, s1 and v0. Every cell starts at zero and
only the reserved cells mean anything to the framework, so a bijective renaming never changes
what a program computes; random draws are keyed by the rank among live random instructions, so
dropping dead code never changes a draw either. Fitness is kept exactly, random ops included.
"""

from __future__ import annotations

from collections.abc import Iterable

from azdsl.language.liveness import live_mask
from azdsl.language.ops import Kind
from azdsl.language.program import FEATURES, LABEL, PREDICTION, Cell, Instr, Program, literal_key

_RESERVED = (LABEL, PREDICTION, FEATURES)

# A program's canonical form as nested tuples of ints and literal keys: hashable and cheap.
Key = tuple[tuple[tuple[object, ...], ...], ...]


def live_parts(program: Program) -> tuple[tuple[Instr, ...], tuple[Instr, ...], tuple[Instr, ...]]:
    """Setup, Predict, Learn with the dead instructions (and every `pass`) left out."""
    mask = live_mask(program)
    s, p, learn = (
        tuple(i for i, live in zip(instrs, flags, strict=True) if live)
        for instrs, flags in zip(program.components, mask, strict=True)
    )
    return s, p, learn


def canonical_names(instrs: Iterable[Instr]) -> dict[Cell, Cell]:
    """The renaming: each non-reserved cell to the next free index of its kind, in order of
    first appearance (output before inputs); reserved cells map to themselves."""
    names: dict[Cell, Cell] = {cell: cell for cell in _RESERVED}
    next_index = {Kind.SCALAR: 2, Kind.VECTOR: 1, Kind.MATRIX: 0}
    for instr in instrs:
        cells = instr.ins if instr.out is None else (instr.out, *instr.ins)
        for cell in cells:
            if cell not in names:
                names[cell] = Cell(cell.kind, next_index[cell.kind])
                next_index[cell.kind] += 1
    return names


def simplify(program: Program) -> Program:
    """The program without dead code, its cells renamed canonically (comments dropped)."""
    parts = live_parts(program)
    names = canonical_names(parts[0] + parts[1] + parts[2])
    s, p, learn = (
        tuple(
            Instr(
                i.code,
                names[i.out] if i.out is not None else None,
                tuple(names[c] for c in i.ins),
                i.literals,
            )
            for i in instrs
        )
        for instrs in parts
    )
    return Program(s, p, learn)


def canonical_key(program: Program) -> Key:
    """A hashable key equal for two programs exactly when their simplified forms are equal
    (floats by bits), computed without building the simplified program."""
    parts = live_parts(program)
    names = canonical_names(parts[0] + parts[1] + parts[2])
    return tuple(
        tuple(
            (
                i.code,
                names[i.out].index if i.out is not None else -1,
                *(names[c].index for c in i.ins),
                *(literal_key(x) for x in i.literals),
            )
            for i in instrs
        )
        for instrs in parts
    )
