"""Deeper simplification: constant propagation and folding, algebraic identities and copy
propagation, so that a simplified program reads as the algorithm it computes.

`fold(program)` repeats, until nothing changes: simplify (dead code, canonical names), then
one rewriting pass over each component. The pass knows, at each point, which cells hold a
known value (every coordinate the same float64 bits) and which cells are copies of others:

- Setup starts with every cell +0.0 (the framework writes nothing before it). Predict starts
  with s0 = +0.0 and v0 unknown (the features); Learn with s0, s1 (the label, the prediction
  or its sigmoid) and v0 unknown. Memory persists, so a cell at Predict's start holds
  Setup's, Predict's or Learn's last value: the entry states are the fixed point of meeting
  those three exits (a cell stays known only where all agree bit for bit).
- An instruction whose inputs are all known is computed by its op's reference semantics (so
  NaN, inf and -0.0 come out as the interpreter computes them). It is dropped when it writes
  the value its cell already holds, and a scalar becomes `s = c` (when `c`'s text reads back
  to the same bits). A vector or matrix value counts as known only if it is uniform and the
  same at several F: every reduction adds its terms one at a time from 0.0, so a sum of equal
  terms that is the same for F = 1 and F = 2 is a fixed point of adding the term and is the
  same for every F.
- Identities that hold bit for bit for every input, NaN and inf included: x * 1, x / 1,
  x + (-0.0), x - 0.0, minimum(x, x), maximum(x, x) are copies of x. Their uses read x
  instead (while neither cell is written again), and the instruction goes where dead; where
  the copy itself is needed (`x = f(...); t = x * 1` with x dead after), the instruction
  that computed x writes t instead.
- With `loose=True` (finite values assumed, results equal within rounding): x + 0.0 and
  x - (-0.0) are x, x - x and 0 * x are 0. These are wrong for inf and NaN (inf - inf is
  NaN, 0 * inf is NaN) and may flip the sign of a zero.

Random ops are never folded; they draw by their rank among the live random ops of their
component, so a rewrite that would make one dead (only a loose one can) is refused: the loose
form then falls back to the strict one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from azdsl.language.liveness import PARTIAL_WRITE, live_mask
from azdsl.language.ops import OPS, Form, Kind, LitType
from azdsl.language.printer import format_literal
from azdsl.language.program import COMPONENTS, FEATURES, LABEL, PREDICTION, Cell, Instr, Program
from azdsl.language.simplify import live_parts, simplify

__all__ = ["fold"]

# A cell's known value: the float64 bits every one of its coordinates holds.
State = dict[Cell, int]

_DIMS = (1, 2, 3, 5)  # the F at which a vector or matrix result must agree to count as known
_MAX_ROUNDS = 20


def _bits(value: float) -> int:
    return int(np.array([value], dtype=np.float64).view(np.uint64)[0])


def _float(bits: int) -> np.float64:
    return np.array([bits], dtype=np.uint64).view(np.float64)[0]  # type: ignore[no-any-return]


ZERO, NEG_ZERO, ONE = _bits(0.0), _bits(-0.0), _bits(1.0)
_SCALAR_CONST = next(op for op in OPS if op.form is Form.CONST and op.out is Kind.SCALAR)
# Per kind, an op that overwrites a whole cell from nothing (liveness probes).
_FULL_WRITE = {kind: next(op for op in OPS if op.out is kind and not op.ins
                          and not PARTIAL_WRITE[op.code]) for kind in Kind}


def _codes(form: Form, *funcs: str) -> frozenset[int]:
    return frozenset(op.code for op in OPS if op.form is form and op.func in funcs)


_PRODUCTS = _codes(Form.INFIX, "*")  # elementwise or scalar-times, never `@`
_QUOTIENTS = _codes(Form.INFIX, "/")
_SUMS = _codes(Form.INFIX, "+")
_DIFFERENCES = _codes(Form.INFIX, "-")
_MIN_MAX = _codes(Form.CALL, "minimum", "maximum")


def _uniform(kind: Kind, bits: int, dim: int) -> object:
    shape = {Kind.SCALAR: (), Kind.VECTOR: (dim,), Kind.MATRIX: (dim, dim)}[kind]
    if not shape:
        return _float(bits)
    return np.full(shape, bits, dtype=np.uint64).view(np.float64)


def _computed(instr: Instr, state: State) -> int | None:
    """The known value the instruction writes, from known inputs; None if unknown."""
    op = instr.op
    if op.is_random or op.out is None:
        return None
    if op.form is Form.CONST:
        value = _bits(float(instr.literals[-1]))
        if len(op.literals) == 1:
            return value
        # `v[i] = c` keeps the other coordinates: still uniform only if they already hold c.
        return value if state.get(instr.out) == value else None  # type: ignore[arg-type]
    inputs = [state.get(cell) for cell in instr.ins]
    if any(bits is None for bits in inputs):
        return None
    found: set[int] = set()
    for dim in _DIMS:
        ins = [_uniform(cell.kind, bits, dim) for cell, bits in zip(instr.ins, inputs, strict=True)
               if bits is not None]
        with np.errstate(all="ignore"):
            new = op.semantics(_uniform(op.out, ZERO, dim), ins, instr.literals, None)
        flat = np.ascontiguousarray(new, dtype=np.float64).reshape(-1).view(np.uint64)
        if not np.all(flat == flat[0]):
            return None
        found.add(int(flat[0]))
    return found.pop() if len(found) == 1 else None


def _identity(instr: Instr, state: State, loose: bool) -> tuple[Cell | None, int | None]:
    """(a cell the result is a copy of, or a known value the result is) by an identity."""
    code, ins = instr.code, instr.ins
    known = [state.get(cell) for cell in ins]
    if code in _PRODUCTS:
        for pos in (0, 1):
            other = ins[1 - pos]
            if known[pos] == ONE and other.kind is instr.op.out:
                return other, None
        if loose and (known[0] in (ZERO, NEG_ZERO) or known[1] in (ZERO, NEG_ZERO)):
            return None, ZERO
    elif code in _QUOTIENTS and known[1] == ONE:
        return ins[0], None
    elif code in _SUMS:
        zeros = (NEG_ZERO, ZERO) if loose else (NEG_ZERO,)
        for pos in (0, 1):
            if known[pos] in zeros:
                return ins[1 - pos], None
    elif code in _DIFFERENCES:
        if known[1] in ((ZERO, NEG_ZERO) if loose else (ZERO,)):
            return ins[0], None
        if loose and ins[0] == ins[1]:
            return None, ZERO
    elif code in _MIN_MAX and ins[0] == ins[1]:
        return ins[0], None
    return None, None


def _as_constant(instr: Instr, bits: int) -> Instr:
    """`s = c` for a scalar whose value's text reads back to the same bits, else as it is."""
    if instr.out is None or instr.out.kind is not Kind.SCALAR:
        return instr
    value = float(_float(bits))
    if _bits(float(format_literal(LitType.FLOAT, value))) != bits:
        return instr  # a NaN with another sign or payload than the text's
    return Instr(_SCALAR_CONST.code, instr.out, (), (value,))


def _run(instrs: Sequence[Instr], entry: State,
         loose: bool) -> tuple[tuple[Instr, ...], State, list[tuple[int, Cell]]]:
    """One component rewritten from its entry state, its exit state, and the positions of the
    rewritten instructions that copy a cell."""
    state = dict(entry)
    copies: dict[Cell, Cell] = {}
    kept: list[Instr] = []
    copying: list[tuple[int, Cell]] = []
    for instr in instrs:
        target = instr.out
        if target is None:
            continue
        instr = Instr(instr.code, target, tuple(copies.get(c, c) for c in instr.ins),
                      instr.literals)
        value = _computed(instr, state)
        source = None
        if value is None:
            source, value = _identity(instr, state, loose)
        if value is not None:
            if state.get(target) == value:
                continue  # it writes the value its cell already holds
            instr = _as_constant(instr, value)
        elif source == target:
            continue  # x = x
        elif source is not None:
            value = state.get(source)
        for cell in [c for c, s in copies.items() if c == target or s == target]:
            del copies[cell]
        if value is None:
            state.pop(target, None)
        else:
            state[target] = value
        if source is not None:
            copies[target] = source
            copying.append((len(kept), source))
        kept.append(instr)
    return tuple(kept), state, copying


def _meet(*states: State) -> State:
    first, *rest = states
    return {cell: bits for cell, bits in first.items() if all(s.get(cell) == bits for s in rest)}


def _fed(state: State, predict: bool) -> State:
    """What the framework leaves before Predict (s0 = 0, v0 = x) or Learn (s0 = y, v0 = x,
    s1 the prediction or its sigmoid)."""
    fed = dict(state)
    fed.pop(FEATURES, None)
    if predict:
        fed[LABEL] = ZERO
    else:
        fed.pop(LABEL, None)
        fed.pop(PREDICTION, None)
    return fed


def _entry_states(program: Program, loose: bool) -> tuple[State, State, State]:
    setup, predict, learn = program.components
    cells = [Cell(kind, i) for kind, n in program.memory_needs().items() for i in range(n)]
    setup_in = dict.fromkeys(cells, ZERO)
    _, setup_out, _ = _run(setup, setup_in, loose)
    predict_in = _fed(setup_out, predict=True)
    while True:  # descends: a meet only forgets cells, so this ends
        _, predict_out, _ = _run(predict, predict_in, loose)
        learn_in = _fed(predict_out, predict=False)
        _, learn_out, _ = _run(learn, learn_in, loose)
        again = _fed(_meet(setup_out, predict_out, learn_out), predict=True)
        if again == predict_in:
            return setup_in, predict_in, learn_in
        predict_in = again


def _random_ops(program: Program) -> tuple[tuple[tuple[object, ...], ...], ...]:
    """The live random instructions of each component (what their draws are keyed by)."""
    return tuple(tuple((i.code, i.key()[3]) for i in part if i.op.is_random)
                 for part in live_parts(program))


def _live_after(program: Program, component: int, position: int, cell: Cell) -> bool:
    """Whether `cell`'s value just after instruction `position` can reach the prediction:
    asked of liveness.live_mask with a probe there that overwrites the cell from nothing."""
    probe = Instr(_FULL_WRITE[cell.kind].code, cell, (),
                  tuple(0.0 for _ in _FULL_WRITE[cell.kind].literals))
    instrs = program.components[component]
    probed = (*instrs[:position + 1], probe, *instrs[position + 1:])
    return live_mask(program.replace_component(COMPONENTS[component], probed))[component][
        position + 1]


def _coalesce(program: Program, component: int, j: int, source: Cell) -> Program:
    """`x = f(...) ... t = x * 1` (a copy at j) as `t = f(...) ...` where that computes the
    same: nothing between reads or writes t or reads x, and x is dead after the copy."""
    instrs = program.components[component]
    target = instrs[j].out
    writers = [i for i in range(j) if instrs[i].out == source]
    if target is None or source not in instrs[j].ins or not writers:
        return program
    i = writers[-1]
    if PARTIAL_WRITE[instrs[i].code]:
        return program  # `v[k] = c` keeps the rest of x, which t would not hold
    between = instrs[i + 1:j]
    if any(target in m.ins or m.out == target or source in m.ins for m in between):
        return program
    if _live_after(program, component, j, source):
        return program
    writer = instrs[i]
    moved = Instr(writer.code, target, writer.ins, writer.literals)
    return program.replace_component(COMPONENTS[component],
                                     (*instrs[:i], moved, *between, *instrs[j + 1:]))


def _round(program: Program, loose: bool) -> Program:
    entries = _entry_states(program, loose)
    parts: list[tuple[Instr, ...]] = []
    copying: list[list[tuple[int, Cell]]] = []
    for instrs, entry in zip(program.components, entries, strict=True):
        rewritten, _, positions = _run(instrs, entry, loose)
        parts.append(rewritten)
        copying.append(positions)
    current = Program(parts[0], parts[1], parts[2])
    for component, positions in enumerate(copying):
        for j, source in reversed(positions):  # the last first: a removal moves later ones
            current = _coalesce(current, component, j, source)
    return simplify(current)


def fold(program: Program, *, loose: bool = False) -> Program:
    """The program simplified (dead code removed, cells renamed canonically), then rewritten
    by constant folding, identities and copy propagation until nothing changes. Strict (the
    default): every prediction is the same, bit for bit, on every input."""
    current = simplify(program)
    draws = _random_ops(current)
    for _ in range(_MAX_ROUNDS):
        following = _round(current, loose)
        if following == current:
            break
        current = following
    if _random_ops(current) != draws:
        return fold(program) if loose else simplify(program)
    return current
