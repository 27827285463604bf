"""Program-level oracles: the test-only references the package's array code is held to.

The search's per-child step is array code (azdsl.search.kernel, azdsl.language.liveness.live_rows,
search.fec.probe_hashes_into), the package's one definition. The functions here define the same
things again, independently, on Programs and Python containers, as the pure-Python
implementations the kernels replaced did:

- `mutate` and `random_program`: the eight mutation types and fresh random programs, drawing
  uniform j of stream `key` as `azdsl.running.rng.uniform01(key, j)` in the order the kernel draws
  them (Gaussians by Box-Muller from the next two). `mutate` returns the child and the record
  (type, component, position) in the kernel's convention: component 0/1/2 or -1; position
  the instruction changed or removed, or the gap an instruction went into (insert, trade),
  -1 where it does not apply.
- `live_mask`: which instructions can reach the prediction (set-based fixed point).
- `probe_hash`: the FEC key of one task's probe errors.
- `FecLru`: the FEC cache as an ordered dict (LRU, forgetting after max_hits hits).

Only settings and facts come from the package (MutationConfig, the op table, cells).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

from azdsl.language.ops import OPS, Form, LitInit, LitMutation, LitType
from azdsl.language.program import (
    FEATURES,
    LABEL,
    PASS,
    PREDICTION,
    RESERVED_OUTPUTS,
    Cell,
    Instr,
    Literal,
    Program,
)
from azdsl.running import rng
from azdsl.search.mutate import MutationConfig

Record = tuple[str, int, int]
Mask = tuple[tuple[bool, ...], tuple[bool, ...], tuple[bool, ...]]

FLIP_PROB = 0.1


# ---- draws -------------------------------------------------------------------------------------


class Draws:
    """Uniforms 0, 1, 2, ... of one stream key."""

    def __init__(self, key: int) -> None:
        self.key = key & rng.MASK
        self.count = 0

    def u(self) -> float:
        value = rng.uniform01(self.key, self.count)
        self.count += 1
        return value

    def index(self, n: int) -> int:
        return int(self.u() * n)

    def gauss(self) -> float:
        u1, u2 = self.u(), self.u()
        return math.sqrt(-2.0 * math.log(1.0 - u1)) * math.cos(rng.TWO_PI * u2)


# ---- the search space as the old mutator's tables ----------------------------------------------


@dataclass(frozen=True)
class Plan:
    """How to draw and alter instructions of one op in one memory."""

    code: int
    outs: tuple[Cell, ...] | None  # None for `pass`
    ins: tuple[tuple[Cell, ...], ...]
    inits: tuple[LitInit, ...]
    rules: tuple[LitMutation, ...]
    alter: tuple[int, ...]  # field numbers: inputs, the output (arity), literals after
    combos: int


@dataclass(frozen=True)
class Tables:
    plans: tuple[Plan, ...]
    allowed: tuple[tuple[Plan, ...], ...]
    mutable: tuple[int, ...]


@cache
def tables(cfg: MutationConfig) -> Tables:
    memory = cfg.memory
    plans = []
    for op in OPS:
        ins = tuple(tuple(Cell(k, i) for i in range(memory[k])) for k in op.ins)
        outs = (None if op.out is None else tuple(
            c for c in (Cell(op.out, i) for i in range(memory[op.out]))
            if c not in RESERVED_OUTPUTS))
        arity, n_lits = op.arity, len(op.literals)
        # The original's AlterParam: inputs and output alike; with literals (no op has inputs
        # too) the output has odds 1/2 and the literals share the rest.
        alter = () if op.out is None else (
            *range(arity), *(arity,) * max(1, n_lits), *range(arity + 1, arity + 1 + n_lits))
        plans.append(Plan(op.code, outs, ins, tuple(x.init for x in op.literals),
                          tuple(x.mutation for x in op.literals), alter,
                          math.prod(len(c) for c in (*ins, outs or ()))))
    return Tables(tuple(plans), tuple(tuple(plans[c] for c in codes) for codes in cfg.ops),
                  tuple(c for c, codes in enumerate(cfg.ops) if codes))


def _init_literal(init: LitInit, d: Draws, dim: int) -> Literal:
    if init is LitInit.INDEX:
        return d.index(dim)
    if init is LitInit.UNIT:
        return d.u()
    if init is LitInit.PM1:
        return 2.0 * d.u() - 1.0
    while True:  # OPEN_PM1: (-1, 1)
        value = 2.0 * d.u() - 1.0
        if value != -1.0:
            return value


def _mutate_literal(rule: LitMutation, value: Literal, d: Draws, dim: int) -> Literal:
    if rule is LitMutation.REDRAW_INDEX:
        return d.index(dim)
    if rule is LitMutation.LOG_OR_FLIP and d.u() < FLIP_PROB:
        return -float(value)
    return float(value) * math.exp(d.gauss())


def fresh(plan: Plan, d: Draws, dim: int) -> Instr:
    """A fresh instruction: literal-free ops draw their cell combination with one uniform
    (mixed radix: inputs..., output last digit); others draw inputs, output, literals."""
    if plan.outs is None:
        return PASS
    if plan.inits:
        ins = tuple(cands[d.index(len(cands))] for cands in plan.ins)
        out = plan.outs[d.index(len(plan.outs))]
        return Instr(plan.code, out, ins, tuple(_init_literal(i, d, dim) for i in plan.inits))
    combo, io = divmod(d.index(plan.combos), len(plan.outs))
    picked = []
    for cands in reversed(plan.ins):
        combo, i = divmod(combo, len(cands))
        picked.append(cands[i])
    return Instr(plan.code, plan.outs[io], tuple(reversed(picked)))


def _fresh_from(allowed: tuple[Plan, ...], d: Draws, dim: int) -> Instr:
    return fresh(allowed[d.index(len(allowed))], d, dim)


def random_program(key: int, cfg: MutationConfig) -> Program:
    """Every instruction of every component with ops drawn afresh, the others `pass`."""
    t, d = tables(cfg), Draws(key)
    parts = [tuple(_fresh_from(allowed, d, cfg.dim) for _ in range(size)) if allowed
             else (PASS,) * size for allowed, size in zip(t.allowed, cfg.init_sizes, strict=True)]
    return Program(*parts)


# ---- mutation ------------------------------------------------------------------------------------


def _with(p: Program, c: int, instrs: Sequence[Instr]) -> Program:
    parts = list(p.components)
    parts[c] = tuple(instrs)
    return Program(*parts)


def _alter_param(p: Program, c: int, d: Draws, t: Tables, dim: int) -> tuple[Program, int]:
    instrs = p.components[c]
    if not instrs:
        return p, -1
    pos = d.index(len(instrs))
    instr = instrs[pos]
    plan = t.plans[instr.code]
    if not plan.alter:  # `pass`
        return p, pos
    f = plan.alter[d.index(len(plan.alter))]
    out, ins, lits = instr.out, list(instr.ins), list(instr.literals)
    arity = len(plan.ins)
    if f <= arity:
        cands = plan.ins[f] if f < arity else plan.outs
        if not cands:  # a kind this memory lacks (a hand-written program)
            return p, pos
        new = cands[d.index(len(cands))]
        if f < arity:
            ins[f] = new
        else:
            out = new
    else:
        k = f - arity - 1
        lits[k] = _mutate_literal(plan.rules[k], lits[k], d, dim)
    child = Instr(instr.code, out, tuple(ins), tuple(lits))
    return _with(p, c, (*instrs[:pos], child, *instrs[pos + 1:])), pos


def mutate(program: Program, key: int, cfg: MutationConfig) -> tuple[Program, Record]:
    """The child stream `key` draws and its record (type, component, position)."""
    t, d, dim = tables(cfg), Draws(key), cfg.dim
    if cfg.mutate_prob < 1.0 and not d.u() < cfg.mutate_prob:
        return program, ("none", -1, -1)
    kind = cfg.mutation_types[d.index(len(cfg.mutation_types))]
    if kind == "identity":
        return program, (kind, -1, -1)
    if kind == "randomize_algorithm":
        parts = list(program.components)
        for c in t.mutable:
            parts[c] = tuple(_fresh_from(t.allowed[c], d, dim) for _ in parts[c])
        return Program(*parts), (kind, -1, -1)
    if not t.mutable:
        return program, (kind, -1, -1)
    c = t.mutable[d.index(len(t.mutable))]
    instrs = list(program.components[c])
    size = len(instrs)
    if kind == "alter_param":
        child, pos = _alter_param(program, c, d, t, dim)
        return child, (kind, c, pos)
    if kind == "randomize_component":
        if not size:
            return program, (kind, c, -1)
        return _with(program, c, [_fresh_from(t.allowed[c], d, dim) for _ in instrs]), \
            (kind, c, -1)
    if kind == "randomize_instruction":
        if not size:
            return program, (kind, c, -1)
        pos = d.index(size)
        instrs[pos] = _fresh_from(t.allowed[c], d, dim)
        return _with(program, c, instrs), (kind, c, pos)
    if kind == "insert_instruction":
        if size >= cfg.max_sizes[c]:
            return program, (kind, c, -1)
        gap = d.index(size + 1)
        instrs.insert(gap, _fresh_from(t.allowed[c], d, dim))
        return _with(program, c, instrs), (kind, c, gap)
    if kind == "remove_instruction":
        if size <= cfg.min_sizes[c] or not size:
            return program, (kind, c, -1)
        pos = d.index(size)
        del instrs[pos]
        return _with(program, c, instrs), (kind, c, pos)
    assert kind == "trade_instruction"
    gap = d.index(size + 1)
    instrs.insert(gap, _fresh_from(t.allowed[c], d, dim))
    removed = d.index(size + 1)
    if removed == gap:  # removed what it inserted
        return program, (kind, c, gap)
    del instrs[removed]
    return _with(program, c, instrs), (kind, c, gap)


# ---- liveness ------------------------------------------------------------------------------------

_FRAMEWORK_WRITTEN = frozenset({FEATURES, LABEL})


def _is_partial_write(instr: Instr) -> bool:
    op = instr.op
    return op.form is Form.CONST and any(lit.type is LitType.INDEX for lit in op.literals)


def _backward(instrs: tuple[Instr, ...], live_out: frozenset[Cell]
              ) -> tuple[tuple[bool, ...], frozenset[Cell]]:
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


def live_mask(program: Program) -> Mask:
    """For each component, whether each instruction can reach the prediction: s1 is read after
    Predict, s0 and v0 are written before every Predict and Learn, Predict and Learn loop."""
    predict_in: frozenset[Cell] = frozenset()
    learn_in: frozenset[Cell] = frozenset()
    while True:
        after_predict = (frozenset({PREDICTION}) | (learn_in - _FRAMEWORK_WRITTEN)
                         | (predict_in - _FRAMEWORK_WRITTEN))
        predict_flags, new_predict_in = _backward(program.predict, after_predict)
        learn_flags, new_learn_in = _backward(program.learn,
                                              new_predict_in - _FRAMEWORK_WRITTEN)
        if new_predict_in == predict_in and new_learn_in == learn_in:
            break
        predict_in, learn_in = new_predict_in, new_learn_in
    setup_flags, _ = _backward(program.setup, predict_in - _FRAMEWORK_WRITTEN)
    return setup_flags, predict_flags, learn_flags


# ---- FEC -----------------------------------------------------------------------------------------

_HASH_SEED = 42
_NAN_BITS = 0x7FF8000000000000


def _bits(value: float) -> int:
    """float64 bits, -0.0 read as 0.0 and every NaN as one NaN."""
    if value != value:
        return _NAN_BITS
    return int(np.float64(value + 0.0).view(np.uint64))


def probe_hash(train_errors: Sequence[float], valid_errors: Sequence[float], task_index: int,
               num_train: int) -> int:
    """The FEC key of one task."""
    h = rng.mix64(_HASH_SEED)
    for value in (*train_errors, *valid_errors):
        h = rng.mix64(h ^ _bits(value))
    for value in (len(train_errors), len(valid_errors), task_index, num_train):
        h = rng.mix64(h ^ (value & rng.MASK))
    return h


class FecLru:
    """The FEC cache: key -> [fitness, hits served], oldest first; an entry is dropped by the
    hit that brings its count to max_hits (0: never), the oldest beyond `size` on insert."""

    def __init__(self, size: int, max_hits: int) -> None:
        self.size = size
        self.max_hits = max_hits
        self.entries: OrderedDict[int, list[float]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def lookup(self, key: int) -> float | None:
        entry = self.entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        entry[1] += 1
        if self.max_hits and entry[1] >= self.max_hits:
            del self.entries[key]
        else:
            self.entries.move_to_end(key)
        return entry[0]

    def insert(self, key: int, fitness: float, served: int = 0) -> None:
        self.entries[key] = [fitness, served]
        self.entries.move_to_end(key)
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)

    def state(self) -> list[tuple[int, float, int]]:
        """(key, fitness, hits served) oldest first."""
        return [(k, e[0], int(e[1])) for k, e in self.entries.items()]
