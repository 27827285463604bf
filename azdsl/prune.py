"""Dead-code removal at search speed: azdsl.liveness's rule, memoised per component.

The search prunes every child before evaluating it. liveness.live_mask is written to be read
and costs ~100 us a program. Here each component's backward pass is a pure function of (the
component's instruction tuple, the cells live at its end); a mutant shares all but one
component tuple with its parent, so almost every pass is a dictionary hit. Cells are bits of
one int. Caches are keyed by object identity and hold a reference to the object, so an id is
never reused while cached; they are cleared wholesale when they grow too big (a cost, never a
change of result). Each distinct live component gets a serial number, so the key of a pruned
program is three small ints. Tests hold the result equal to liveness.live_mask.
"""

from __future__ import annotations

from typing import NamedTuple

from azdsl.liveness import live_mask
from azdsl.ops import Form, Kind, LitType
from azdsl.program import FEATURES, LABEL, PREDICTION, Cell, Instr, Program

_OFFSET = {Kind.SCALAR: 0, Kind.VECTOR: 64, Kind.MATRIX: 128}
_LIMIT = 64  # cells per kind the bitmasks describe; beyond, the reference rule runs


def _bit(cell: Cell) -> int:
    return 1 << (_OFFSET[cell.kind] + cell.index)


_KEEP = ~(_bit(FEATURES) | _bit(LABEL))  # the framework writes v0 and s0 before each call
_PREDICTION = _bit(PREDICTION)

# (output bit, input bits, partial write, random op, serial number of the instruction's content)
_Bits = tuple[int, int, bool, bool, int]
# (the component tuple, kept instructions, cells live at the start, live-code id, random)
_Pass = tuple[tuple[Instr, ...], tuple[Instr, ...], int, int, bool]


def _bits(instr: Instr, serial: int) -> _Bits | None:
    if any(c.index >= _LIMIT for c in instr.cells()):
        return None
    op = instr.op
    ins = 0
    for cell in instr.ins:
        ins |= _bit(cell)
    partial = op.form is Form.CONST and any(x.type is LitType.INDEX for x in op.literals)
    return (_bit(instr.out) if instr.out is not None else 0, ins, partial, op.is_random, serial)


class Pruned(NamedTuple):
    """The live code of a program: a memo key, the live instructions, random ops or not."""

    key: tuple[object, ...]
    live: tuple[tuple[Instr, ...], tuple[Instr, ...], tuple[Instr, ...]]
    random: bool

    def program(self) -> Program:
        """The live code as a Program (cells keep their names; azdsl.simplify renames)."""
        return Program(*self.live)


class _TooWide(Exception):
    """A cell index beyond the bitmasks."""


class Pruner:
    """Prunes programs (see the module docstring)."""

    def __init__(self, max_cached: int = 200_000) -> None:
        self.max_cached = max_cached
        self._instr: dict[int, tuple[Instr, _Bits | None]] = {}
        self._passes: dict[tuple[int, int], _Pass] = {}
        self._components: dict[int, tuple[tuple[Instr, ...], list[tuple[Instr, _Bits]]]] = {}
        self._ids: dict[object, int] = {}  # instruction or live code -> serial number
        self._next_id = 0

    def _serial(self, content: object) -> int:
        serial = self._ids.get(content)
        if serial is None:
            serial = self._ids[content] = self._next_id
            self._next_id += 1
        return serial

    def prune(self, program: Program) -> Pruned:
        try:
            setup, predict, learn = program.setup, program.predict, program.learn
            passes = self._passes
            predict_in = learn_in = 0
            while True:
                out = _PREDICTION | ((learn_in | predict_in) & _KEEP)
                p = passes.get((id(predict), out)) or self._pass(predict, out)
                out = p[2] & _KEEP
                lp = passes.get((id(learn), out)) or self._pass(learn, out)
                if p[2] == predict_in and lp[2] == learn_in:
                    break
                predict_in, learn_in = p[2], lp[2]
            out = predict_in & _KEEP
            s = passes.get((id(setup), out)) or self._pass(setup, out)
        except _TooWide:
            return _slow(program)
        return Pruned((s[3], p[3], lp[3]), (s[1], p[1], lp[1]), s[4] or p[4] or lp[4])

    def _compiled(self, instrs: tuple[Instr, ...]) -> list[tuple[Instr, _Bits]]:
        """The instructions of a component with their bits, last first."""
        cache = self._instr
        out = []
        for instr in reversed(instrs):
            entry = cache.get(id(instr))
            if entry is None:
                entry = cache[id(instr)] = (instr, _bits(instr, self._serial(instr.key())))
            bits = entry[1]
            if bits is None:
                raise _TooWide
            out.append((instr, bits))
        self._components[id(instrs)] = (instrs, out)
        return out

    def _pass(self, instrs: tuple[Instr, ...], live: int) -> _Pass:
        """The backward pass of one component given the cells live at its end."""
        if len(self._passes) >= self.max_cached or len(self._instr) >= self.max_cached:
            self._passes.clear()
            self._instr.clear()
            self._ids.clear()
            self._components.clear()
        key = (id(instrs), live)
        compiled = self._components.get(id(instrs))
        rows = compiled[1] if compiled is not None else self._compiled(instrs)
        kept = []
        code = []
        random = False
        for instr, (out, ins, partial, is_random, serial) in rows:
            if out & live:
                kept.append(instr)
                code.append(serial)
                random = random or is_random
                if not partial:
                    live &= ~out
                live |= ins
        kept.reverse()
        code.reverse()
        result = (instrs, tuple(kept), live, self._serial(tuple(code)), random)
        self._passes[key] = result
        return result


def _slow(program: Program) -> Pruned:
    mask = live_mask(program)
    live = tuple(
        tuple(i for i, flag in zip(c, flags, strict=True) if flag)
        for c, flags in zip(program.components, mask, strict=True)
    )
    key = ("slow", *(tuple(i.key() for i in part) for part in live))
    random = any(i.op.is_random for part in live for i in part)
    return Pruned(key, (live[0], live[1], live[2]), random)
