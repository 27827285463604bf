"""Which instructions can affect the prediction, and the random-draw ordinals built on that.

The evaluation loop is Setup once, then Predict and Learn repeatedly (training steps, with
validation Predicts in between). Before every Predict and every Learn the framework writes
v0 (features) and s0 (label or 0), so those cells are dead on entry to both; after Predict the
framework reads s1. An instruction is live when its output is read later along that loop.
`v[i] = c` and `m[i, j] = c` change one coordinate, so they keep the rest of their cell alive.
"""

from __future__ import annotations

from azdsl.ops import Form, LitType
from azdsl.program import FEATURES, LABEL, PREDICTION, Cell, Instr, Program

Mask = tuple[tuple[bool, ...], tuple[bool, ...], tuple[bool, ...]]
Ordinals = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]


def _is_partial_write(instr: Instr) -> bool:
    op = instr.op
    return op.form is Form.CONST and any(lit.type is LitType.INDEX for lit in op.literals)


def _backward(
    instrs: tuple[Instr, ...], live_out: frozenset[Cell]
) -> tuple[tuple[bool, ...], frozenset[Cell]]:
    """Per-instruction liveness of one component given the cells live at its end."""
    live = set(live_out)
    flags = [False] * len(instrs)
    for pos in range(len(instrs) - 1, -1, -1):
        instr = instrs[pos]
        if instr.out is None or instr.out not in live:
            continue
        flags[pos] = True
        if not _is_partial_write(instr):
            live.discard(instr.out)
        live.update(instr.ins)
    return tuple(flags), frozenset(live)


_FRAMEWORK_WRITTEN = frozenset({FEATURES, LABEL})


def live_mask(program: Program) -> Mask:
    """For each component, whether each instruction can reach the prediction."""
    # Fixed point over the Predict/Learn loop: live sets only grow, over finitely many cells.
    predict_in: frozenset[Cell] = frozenset()
    learn_in: frozenset[Cell] = frozenset()
    while True:
        after_predict = frozenset({PREDICTION}) | (learn_in - _FRAMEWORK_WRITTEN) | (
            predict_in - _FRAMEWORK_WRITTEN
        )
        predict_flags, new_predict_in = _backward(program.predict, after_predict)
        after_learn = new_predict_in - _FRAMEWORK_WRITTEN
        learn_flags, new_learn_in = _backward(program.learn, after_learn)
        if new_predict_in == predict_in and new_learn_in == learn_in:
            break
        predict_in, learn_in = new_predict_in, new_learn_in
    setup_flags, _ = _backward(program.setup, predict_in - _FRAMEWORK_WRITTEN)
    return setup_flags, predict_flags, learn_flags


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
