"""Programs as arrays: the form the search's compiled code (and liveness) works on.

A program is `rows` (one row per instruction: op code, output cell, input cells), `lits` (three
float64 literals per row; index literals stored as floats) and `n` (the sizes of Setup, Predict
and Learn, whose rows follow each other). A cell is coded kind * KIND_SHIFT + index (kinds in
the order scalar, vector, matrix), -1 for none. `encode` and `decode` convert, and `decode`
can share every instruction that equals its parent's, so a mutant built from arrays costs
about as much as one built from tuples.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from azdsl.language.ops import OPS, Kind, LitType
from azdsl.language.program import Cell, Instr, Program
from azdsl.limits import MAX_CELLS

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

# A cell code leaves room for every index a memory may have (limits.MAX_CELLS), and the
# memo key of search.kernel.prune_lower packs 3 x KIND_SHIFT into 16 bits.
KIND_SHIFT = MAX_CELLS
KINDS = (Kind.SCALAR, Kind.VECTOR, Kind.MATRIX)


def cell_code(cell: Cell | None) -> int:
    return -1 if cell is None else KINDS.index(cell.kind) * KIND_SHIFT + cell.index


def cell_of(code: int) -> Cell:
    return Cell(KINDS[code // KIND_SHIFT], code % KIND_SHIFT)


def arrays(rows: int) -> tuple[IntArray, FloatArray, IntArray]:
    """Empty arrays for a program of up to `rows` instructions."""
    return (np.zeros((rows, 4), dtype=np.int64), np.zeros((rows, 3)),
            np.zeros(3, dtype=np.int64))


def encode(program: Program, rows: IntArray, lits: FloatArray, n: IntArray) -> None:
    """Write a program into rows (op, out, in0, in1), literals and component sizes."""
    r = 0
    for c, instrs in enumerate(program.components):
        n[c] = len(instrs)
        for instr in instrs:
            rows[r, 0] = instr.code
            rows[r, 1] = cell_code(instr.out)
            rows[r, 2] = cell_code(instr.ins[0]) if len(instr.ins) > 0 else -1
            rows[r, 3] = cell_code(instr.ins[1]) if len(instr.ins) > 1 else -1
            lits[r, :] = 0.0
            for k, value in enumerate(instr.literals):
                lits[r, k] = float(value)
            r += 1


def encoded(program: Program, extra: int = 0) -> tuple[IntArray, FloatArray, IntArray]:
    """The program in fresh arrays with room for `extra` more rows."""
    rows, lits, n = arrays(sum(program.sizes()) + extra + 1)
    encode(program, rows, lits, n)
    return rows, lits, n


def _instr(row: list[int], floats: list[float]) -> Instr:
    code, out, in0, in1 = row
    op = OPS[code]
    ins = tuple(cell_of(x) for x in (in0, in1)[: op.arity])
    literals = tuple(int(floats[k]) if lit.type is LitType.INDEX else floats[k]
                     for k, lit in enumerate(op.literals))
    return Instr(code, cell_of(out) if out >= 0 else None, ins, literals)


def decode(rows: IntArray, lits: FloatArray, n: IntArray,
           parent: tuple[Program, IntArray, FloatArray, IntArray] | None = None) -> Program:
    """The Program of rows written by `encode` or the kernels. With `parent` (a program and
    its arrays), an instruction whose row equals the parent's at the same place, counted from
    either end of its component (which covers one inserted or removed row), is the parent's
    own object, and so is a component, or the whole program, that did not change."""
    values = rows.tolist()
    floats = lits.tolist()
    bits = lits.view(np.uint64)
    parts: list[tuple[Instr, ...]] = []
    r = 0
    r_old = 0
    for c in range(3):
        size = int(n[c])
        old: tuple[Instr, ...] = ()
        same_front = same_back = np.zeros(0, dtype=np.bool_)
        if parent is not None:
            program, p_rows, p_lits, p_n = parent
            old = program.components[c]
            o = int(p_n[c])
            m = min(size, o)
            p_bits = p_lits.view(np.uint64)
            # child row r + k against parent row r_old + k, and aligned at the ends
            same_front = _same(rows, bits, r, p_rows, p_bits, r_old, m)
            same_back = _same(rows, bits, r + size - m, p_rows, p_bits, r_old + o - m, m)
            r_old += o
        instrs = []
        m = len(same_front)
        for k in range(size):
            if k < m and same_front[k]:
                instrs.append(old[k])
            elif k >= size - m and same_back[k - (size - m)]:
                instrs.append(old[len(old) - (size - k)])
            else:
                instrs.append(_instr(values[r + k], floats[r + k]))
        r += size
        part = tuple(instrs)
        if old and len(old) == size and all(a is b for a, b in zip(part, old, strict=True)):
            part = old
        parts.append(part)
    if parent is not None and all(a is b for a, b in zip(parts, parent[0].components,
                                                         strict=True)):
        return parent[0]
    return Program(parts[0], parts[1], parts[2])


def _same(rows: IntArray, bits: Any, a: int, p_rows: IntArray, p_bits: Any, b: int,
          count: int) -> Any:
    """Whether rows a.. equal the parent's rows b.., literals bit for bit, for `count` rows."""
    return ((rows[a:a + count] == p_rows[b:b + count]).all(axis=1)
            & (bits[a:a + count] == p_bits[b:b + count]).all(axis=1))
