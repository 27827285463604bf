"""Programs as the VM's arrays: instruction rows of ints, float literals, one flat memory.

A lowered program is a flat int64 array of rows (op code, cell offsets into one flat float64
memory, index literals, random ordinal) and a float64 array of float literals; Setup, Predict
and Learn follow each other and `bounds` marks where each starts. Lowering is cached by object
identity (a mutant shares instructions and components with its parent), so it costs a few
microseconds. Pure numpy: azdsl.running.vm runs these arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from azdsl.language.liveness import random_ordinals
from azdsl.language.ops import OPS, Kind, LitType, on_table_change
from azdsl.language.printer import format_instr
from azdsl.language.program import Instr, Program

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# One instruction row of the int array.
COL_OP, COL_OUT, COL_IN1, COL_IN2, COL_IDX1, COL_IDX2, COL_ORDINAL = range(7)
ROW = 8  # row width (one spare column keeps rows 64-byte aligned)
FLOAT_ROW = max(sum(lit.type is LitType.FLOAT for lit in op.literals) for op in OPS)
INDEX_COLS = (COL_IDX1, COL_IDX2)

_RANDOM_CODES: frozenset[int] = frozenset()
_INDEX_LITS: tuple[tuple[int, ...], ...] = ()
_FLOAT_LITS: tuple[tuple[int, ...], ...] = ()
_FLOAT_PAD: tuple[tuple[float, ...], ...] = ()


@on_table_change
def _tables() -> None:
    """Per-op-code lookups, rebuilt when user ops join the table (their literals fit FLOAT_ROW)."""
    global _RANDOM_CODES, _INDEX_LITS, _FLOAT_LITS, _FLOAT_PAD
    _RANDOM_CODES = frozenset(op.code for op in OPS if op.is_random)
    _INDEX_LITS = tuple(tuple(pos for pos, lit in enumerate(op.literals)
                              if lit.type is LitType.INDEX) for op in OPS)
    _FLOAT_LITS = tuple(tuple(pos for pos, lit in enumerate(op.literals)
                              if lit.type is LitType.FLOAT) for op in OPS)
    _FLOAT_PAD = tuple((0.0,) * (FLOAT_ROW - len(pos)) for pos in _FLOAT_LITS)


_tables()
_CACHE_MAX = 20_000  # entries per layout before a cache is cleared (a cost, never a change)


class Lowered(NamedTuple):
    """A program as VM arrays. Offsets are relative to the program's own first row."""

    ints: IntArray  # (n * ROW,)
    floats: FloatArray  # (n * FLOAT_ROW,)
    bounds: tuple[int, int, int, int]  # where Setup, Predict, Learn start; the end
    mem_size: int
    features: int  # offset of v0 in the flat memory


def layout(sizes: tuple[int, int, int], dim: int) -> dict[Kind, tuple[int, int]]:
    """(base offset, width) per kind: scalars, then vectors, then matrices, all contiguous."""
    ns, nv, _ = sizes
    return {Kind.SCALAR: (0, 1), Kind.VECTOR: (ns, dim), Kind.MATRIX: (ns + nv * dim, dim * dim)}


class _Component(NamedTuple):
    instrs: tuple[Instr, ...]  # held, so its id is not reused while cached
    ints: IntArray
    floats: FloatArray
    random: tuple[int, ...]  # rows holding random ops (their ordinal column is filled later)


class _Layout:
    """Lowering caches of one memory layout, keyed by object identity (mutants share
    instructions and whole components with their parents, so most lookups hit)."""

    def __init__(self, sizes: tuple[int, int, int], dim: int) -> None:
        self.base = layout(sizes, dim)
        self.sizes = sizes
        self.dim = dim
        self.count = dict(zip((Kind.SCALAR, Kind.VECTOR, Kind.MATRIX), sizes, strict=True))
        self.rows: dict[int, tuple[Instr, list[int], tuple[float, ...]]] = {}
        self.components: dict[int, _Component] = {}

    def row(self, instr: Instr) -> tuple[list[int], tuple[float, ...]]:
        """An instruction's row, checked: the VM itself never checks an index."""
        code = instr.code
        row = [code, 0, 0, 0, 0, 0, -1, 0]  # ordinal -1: not a live random op
        base = self.base
        for col, cell in ((COL_OUT, instr.out), *zip((COL_IN1, COL_IN2), instr.ins,
                                                     strict=False)):
            if cell is not None:
                if not 0 <= cell.index < self.count[cell.kind]:
                    raise ValueError(f"`{cell}` is outside the memory {self.sizes}")
                b, w = base[cell.kind]
                row[col] = b + cell.index * w
        lits = instr.literals
        for col, pos in zip(INDEX_COLS, _INDEX_LITS[code], strict=False):
            row[col] = int(lits[pos])
            if not 0 <= row[col] < self.dim:
                raise ValueError(f"index {row[col]} is out of range for F = {self.dim}")
        floats = tuple(float(lits[pos]) for pos in _FLOAT_LITS[code]) + _FLOAT_PAD[code]
        self.rows[id(instr)] = (instr, row, floats)
        return row, floats

    def component(self, instrs: tuple[Instr, ...]) -> _Component:
        if len(self.components) >= _CACHE_MAX or len(self.rows) >= _CACHE_MAX:
            self.components.clear()
            self.rows.clear()
        ints: list[int] = []
        floats: list[float] = []
        rows = self.rows
        for instr in instrs:
            hit = rows.get(id(instr))
            row, fl = (hit[1], hit[2]) if hit is not None else self.row(instr)
            ints += row
            floats += fl
        random = tuple(n for n, instr in enumerate(instrs) if instr.code in _RANDOM_CODES)
        entry = _Component(instrs, np.array(ints, dtype=np.int64),
                           np.array(floats, dtype=np.float64), random)
        self.components[id(instrs)] = entry
        return entry


_LAYOUTS: dict[tuple[int, int, int, int], _Layout] = {}


def lower(program: Program, sizes: tuple[int, int, int], dim: int, *,
          all_live: bool = False) -> Lowered:
    """The VM arrays of `program` with memory `sizes` (at least its needs) at F = `dim`.

    Random ops are keyed by their rank among the live random ops of their component
    (azdsl.language.liveness); `all_live=True` promises that every instruction is live (a pruned
    program), which skips the liveness analysis.
    """
    key = (sizes[0], sizes[1], sizes[2], dim)
    cache = _LAYOUTS.get(key)
    if cache is None:
        cache = _LAYOUTS[key] = _Layout(sizes, dim)
    found = cache.components
    parts = []
    for instrs in (program.setup, program.predict, program.learn):
        part = found.get(id(instrs))
        parts.append(part if part is not None else cache.component(instrs))
    s, p, learn = parts
    ints = np.concatenate((s.ints, p.ints, learn.ints))
    if s.random or p.random or learn.random:
        ordinals = None if all_live else random_ordinals(program)
        rows = ints.reshape(-1, ROW)
        start = 0
        for c, part in enumerate(parts):
            for rank, n in enumerate(part.random):
                rows[start + n, COL_ORDINAL] = rank if ordinals is None else ordinals[c][n]
            start += len(part.instrs)
    n0, n1 = len(s.instrs), len(s.instrs) + len(p.instrs)
    return Lowered(ints, np.concatenate((s.floats, p.floats, learn.floats)),
                   (0, n0, n1, n1 + len(learn.instrs)),
                   sizes[0] + sizes[1] * dim + sizes[2] * dim * dim, sizes[0])


def address(array: npt.NDArray[Any]) -> np.uint64:
    """An array's data address typed as the VM's compiled code sees `array.ctypes.data`
    (uintp), so calls from Python reuse the same compiled specialisation."""
    return np.uint64(array.ctypes.data)


def memory_views(memory: FloatArray, sizes: tuple[int, int, int],
                 dim: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The flat VM memory seen as the interpreter's (s, v, m) arrays (views, not copies)."""
    ns, nv, nm = sizes
    return (memory[:ns], memory[ns: ns + nv * dim].reshape(nv, dim),
            memory[ns + nv * dim: ns + nv * dim + nm * dim * dim].reshape(nm, dim, dim))


def describe_lowered(program: Program, sizes: tuple[int, int, int], dim: int) -> str:
    """The VM's instruction table of a program, one row per instruction, as text."""
    low = lower(program, sizes, dim)
    base = layout(sizes, dim)
    lines = [
        f"# azdsl VM program, F = {dim}: memory of {low.mem_size} floats: "
        f"{sizes[0]} scalars at 0, {sizes[1]} vectors at {base[Kind.VECTOR][0]}, "
        f"{sizes[2]} matrices at {base[Kind.MATRIX][0]}",
        f"# {'pc':>4} {'op':>3} {'out':>5} {'in1':>5} {'in2':>5} {'i':>3} {'j':>3} {'ord':>4}"
        "  literals  # instruction",
    ]
    rows = low.ints.reshape(-1, ROW)
    floats = low.floats.reshape(-1, FLOAT_ROW)
    pc = 0
    for name, instrs in zip(("Setup", "Predict", "Learn"), program.components, strict=True):
        lines.append(f"{name}:")
        for instr in instrs:
            r = rows[pc]
            lits = ", ".join(repr(float(x)) for x in floats[pc][: len(_FLOAT_LITS[instr.code])])
            lines.append(
                f"  {pc:>4} {r[COL_OP]:>3} {r[COL_OUT]:>5} {r[COL_IN1]:>5} {r[COL_IN2]:>5} "
                f"{r[COL_IDX1]:>3} {r[COL_IDX2]:>3} {r[COL_ORDINAL]:>4}  {lits or '-'}  "
                f"# {format_instr(instr)}")
            pc += 1
    return "\n".join(lines) + "\n"


def concatenate(lowered: Sequence[Lowered]) -> tuple[IntArray, FloatArray, IntArray, IntArray]:
    """One int array, one float array, absolute bounds (P, 4) and layouts (P, 2)."""
    if len(lowered) == 1:  # the search's case: no copies
        low = lowered[0]
        return (low.ints, low.floats, np.array([low.bounds], dtype=np.int64),
                np.array([(low.mem_size, low.features)], dtype=np.int64))
    bounds = np.zeros((len(lowered), 4), dtype=np.int64)
    layouts = np.zeros((len(lowered), 2), dtype=np.int64)
    start = 0
    for p, low in enumerate(lowered):
        bounds[p] = np.add(low.bounds, start)
        layouts[p] = (low.mem_size, low.features)
        start += low.bounds[3]
    ints = np.concatenate([low.ints for low in lowered]) if lowered else np.zeros(0, np.int64)
    floats = np.concatenate([low.floats for low in lowered]) if lowered else np.zeros(0)
    return ints, floats, bounds, layouts
