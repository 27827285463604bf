"""Which instructions can affect the prediction, and the random-draw ordinals built on that.

The evaluation loop is Setup once, then Predict and Learn repeatedly (training steps, with
validation Predicts in between). Before every Predict and every Learn the framework writes
v0 (features) and s0 (label or 0), so those cells are dead on entry to both; after Predict the
framework reads s1. An instruction is live when its output is read later along that loop.
`v[i] = c` and `m[i, j] = c` change one coordinate, so they keep the rest of their cell alive.
"""

from __future__ import annotations

import sys

import numpy as np
import numpy.typing as npt

from azdsl.language.ops import OPS, Form, LitType, on_table_change
from azdsl.language.program import Program
from azdsl.language.rows import KIND_SHIFT, IntArray, encoded

Mask = tuple[tuple[bool, ...], tuple[bool, ...], tuple[bool, ...]]
Ordinals = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]
BoolArray = npt.NDArray[np.bool_]

# Per op code: a write of one coordinate (`v[i] = c`, `m[i, j] = c`), which keeps the rest of
# its output cell alive.
def _partial_writes() -> BoolArray:
    return np.array([op.form is Form.CONST and op.out is not None
                     and any(lit.type is LitType.INDEX for lit in op.literals)
                     for op in OPS], dtype=np.bool_)


PARTIAL_WRITE = _partial_writes()


@on_table_change
def _rebuild() -> None:
    global PARTIAL_WRITE
    PARTIAL_WRITE = _partial_writes()


def live_rows(rows: IntArray, n: IntArray, cell_base: IntArray, partial: BoolArray,
              flags: BoolArray, scratch: BoolArray) -> None:
    """flags[r]: whether row r (azdsl.language.rows) can reach the prediction. Cells are numbered
    scalars first (cell_base: the first number of each kind; s0 = 0, s1 = 1, v0 =
    cell_base[1]); scratch holds four rows of a flag per cell.

    Array code in one function, so that it runs as plain Python here (the reference
    interpreter imports no Numba) and compiled in the search (search.kernel compiles it)."""
    predict_in = scratch[0]
    learn_in = scratch[1]
    live = scratch[2]
    new_predict_in = scratch[3]
    predict_in[:] = False
    learn_in[:] = False
    s_end = n[0]
    p_end = s_end + n[1]
    l_end = p_end + n[2]
    v0 = cell_base[1]
    # Backward passes: Predict then Learn until the cells live on entry to them stop growing
    # (a fixed point over the Predict/Learn loop), then Setup.
    phase = 0
    while True:
        if phase == 0:
            for i in range(live.shape[0]):
                live[i] = predict_in[i] or learn_in[i]
            live[1] = True  # s1, the prediction, is read after Predict
            start, stop = s_end, p_end
        elif phase == 1:
            new_predict_in[:] = live
            start, stop = p_end, l_end
        else:
            live[:] = predict_in
            start, stop = 0, s_end
        live[0] = False  # s0 and v0 are written by the framework before Predict and Learn
        live[v0] = False
        for r in range(stop - 1, start - 1, -1):
            cell = rows[r, 1]
            out = -1 if cell < 0 else cell_base[cell // KIND_SHIFT] + cell % KIND_SHIFT
            if out >= 0 and live[out]:
                flags[r] = True
                if not partial[rows[r, 0]]:  # `v[i] = c` keeps the rest of v alive
                    live[out] = False
                for j in range(2, 4):
                    cell = rows[r, j]
                    if cell >= 0:
                        live[cell_base[cell // KIND_SHIFT] + cell % KIND_SHIFT] = True
            else:
                flags[r] = False
        if phase == 2:
            return
        if phase == 1:
            same = True
            for i in range(live.shape[0]):
                if new_predict_in[i] != predict_in[i] or live[i] != learn_in[i]:
                    same = False
            predict_in[:] = new_predict_in
            learn_in[:] = live
            phase = 2 if same else 0
        else:
            phase = 1


def live_mask(program: Program) -> Mask:
    """For each component, whether each instruction can reach the prediction."""
    rows, _, n = encoded(program)
    needs = list(program.memory_needs().values())
    cell_base = np.array([0, needs[0], needs[0] + needs[1]], dtype=np.int64)
    flags = np.zeros(rows.shape[0], dtype=np.bool_)
    # The same function compiled, where Numba is loaded anyway (the VM, the search); the
    # reference interpreter alone runs it as Python.
    kernels = sys.modules.get("azdsl.running.kernels")
    run = kernels.live_rows if kernels is not None else live_rows
    run(rows, n, cell_base, PARTIAL_WRITE, flags, np.zeros((4, sum(needs)), dtype=np.bool_))
    values = flags.tolist()
    s, p = int(n[0]), int(n[1])
    total = s + p + int(n[2])
    return tuple(values[:s]), tuple(values[s:s + p]), tuple(values[s + p:total])


def random_ordinals(program: Program, mask: Mask | None = None) -> Ordinals:
    """Rank of each live random instruction among the live random ones of its component; -1
    elsewhere. Draws are keyed by it, so dead-code removal never changes a draw."""
    mask = mask if mask is not None else live_mask(program)
    result = []
    for instrs, flags in zip(program.components, mask, strict=True):
        ordinals = []
        rank = 0
        for instr, live in zip(instrs, flags, strict=True):
            if live and instr.op.is_random:
                ordinals.append(rank)
                rank += 1
            else:
                ordinals.append(-1)
        result.append(tuple(ordinals))
    return result[0], result[1], result[2]
