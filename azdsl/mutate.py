"""Random instructions and programs, and the eight mutation types (docs/search.md).

Everything is a pure function of its inputs and an explicit numpy Generator. The search calls
`mutate` tens of thousands of times a second, so a config precomputes its tables once (cells per
kind, a plan per op, allowed ops per component) and draws come from the generator in blocks.
A mutant shares every untouched instruction with its parent, and when a mutation touches nothing
(identity, `pass`, a size limit, no draw of mutate_prob) the child is the parent object itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from azdsl.errors import ConfigError, Diagnostic
from azdsl.ops import OPS, Kind, LitInit, LitMutation, Op
from azdsl.program import (
    COMPONENTS,
    PASS,
    RESERVED_OUTPUTS,
    Cell,
    Component,
    Instr,
    Literal,
    Program,
)
from azdsl.rng import TWO_PI

MUTATION_TYPES: tuple[str, ...] = (
    "alter_param",
    "randomize_instruction",
    "randomize_component",
    "insert_instruction",
    "remove_instruction",
    "trade_instruction",
    "randomize_algorithm",
    "identity",
)

_OP_CODE_BY_NAME = {op.name: op.code for op in OPS}

# The paper's demo search space (docs/search.md): `s = c`, dot, scalar -, scalar *,
# scalar-vector *, vector +.
DEMO_OPS: tuple[int, ...] = tuple(
    _OP_CODE_BY_NAME[name]
    for name in (
        "SCALAR_CONST_SET",
        "VECTOR_INNER_PRODUCT",
        "SCALAR_DIFF",
        "SCALAR_PRODUCT",
        "SCALAR_VECTOR_PRODUCT",
        "VECTOR_SUM",
    )
)

Triple = tuple[int, int, int]
OpLists = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]

_LOG_FLIP_PROB = 0.1
_INTERN_MAX = 1024
_BLOCK = 16  # uniforms drawn from the generator at a time (one call costs about as much as 3)


@dataclass(frozen=True)
class MutationConfig:
    """The search space and the mutation settings. Defaults are the paper's demo (docs/search.md).

    Per-component triples are in the order Setup, Predict, Learn. Op lists hold op codes;
    a repeated code (or mutation type) weighs more. Size limits are inclusive.
    """

    dim: int = 4
    scalars: int = 4
    vectors: int = 3
    matrices: int = 1
    ops: OpLists = (DEMO_OPS, DEMO_OPS, DEMO_OPS)
    init_sizes: Triple = (10, 2, 8)
    min_sizes: Triple = (0, 0, 0)
    max_sizes: Triple = (100, 100, 100)
    mutation_types: tuple[str, ...] = (
        "alter_param",
        "randomize_instruction",
        "randomize_component",
    )
    mutate_prob: float = 0.9
    _tables: _Tables = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Accept lists (TOML, JSON) and keep tuples, so configs stay hashable.
        for name in ("ops", "init_sizes", "min_sizes", "max_sizes", "mutation_types"):
            value = getattr(self, name)
            if name == "ops":
                value = tuple(tuple(codes) for codes in value)
            object.__setattr__(self, name, tuple(value))
        problems = _config_problems(self)
        if problems:
            raise ConfigError([Diagnostic(p) for p in problems])
        object.__setattr__(self, "_tables", _build_tables(self))

    def __getstate__(self) -> dict[str, object]:
        # Pickle the settings only (workers get small configs); tables are rebuilt on load.
        return {k: v for k, v in self.__dict__.items() if k != "_tables"}

    def __setstate__(self, state: dict[str, object]) -> None:
        for key, value in state.items():
            object.__setattr__(self, key, value)
        object.__setattr__(self, "_tables", _build_tables(self))

    @property
    def memory(self) -> dict[Kind, int]:
        """Cells available per kind."""
        return {Kind.SCALAR: self.scalars, Kind.VECTOR: self.vectors, Kind.MATRIX: self.matrices}

    def mutable_components(self) -> tuple[Component, ...]:
        """Components with a non-empty allowed-op list (the only ones mutations touch)."""
        return tuple(COMPONENTS[c] for c in self._tables.mutable)


def _config_problems(cfg: MutationConfig) -> list[str]:
    problems = []
    if cfg.dim < 1:
        problems.append(f"dim must be at least 1, got {cfg.dim}")
    if cfg.scalars < 2 or cfg.vectors < 1 or cfg.matrices < 0:
        problems.append(
            "memory needs at least 2 scalars (s0, s1) and 1 vector (v0), got "
            f"{cfg.scalars} scalars, {cfg.vectors} vectors, {cfg.matrices} matrices"
        )
    for name in ("ops", "init_sizes", "min_sizes", "max_sizes"):
        if len(getattr(cfg, name)) != 3:
            problems.append(f"{name} needs one entry per component (Setup, Predict, Learn)")
    if problems:
        return problems
    memory = cfg.memory
    for comp, codes in zip(COMPONENTS, cfg.ops, strict=True):
        for code in codes:
            if not 0 <= code < len(OPS):
                problems.append(f"{comp.value}: no op with code {code}")
                continue
            op = OPS[code]
            kinds = op.ins + ((op.out,) if op.out is not None else ())
            missing = [k.word for k in kinds if memory[k] == 0]
            if op.out is not None and memory[op.out] and not _output_cells(op.out, memory[op.out]):
                missing.append(f"writable {op.out.word}")
            if missing:
                problems.append(
                    f"{comp.value}: op {code} ({op.spelling()}) needs a "
                    f"{' and a '.join(missing)} cell the memory does not have"
                )
    for comp, lo, hi, init in zip(
        COMPONENTS, cfg.min_sizes, cfg.max_sizes, cfg.init_sizes, strict=True
    ):
        if lo < 0 or init < 0 or hi < lo:
            problems.append(
                f"{comp.value}: sizes need 0 <= min <= max and init >= 0, got min {lo}, "
                f"max {hi}, init {init}"
            )
    for name in cfg.mutation_types:
        if name not in MUTATION_TYPES:
            problems.append(f"unknown mutation type {name!r} (known: {', '.join(MUTATION_TYPES)})")
    if not cfg.mutation_types:
        problems.append("the mutation type list is empty")
    if not 0.0 <= cfg.mutate_prob <= 1.0:
        problems.append(f"mutate_prob must be in [0, 1], got {cfg.mutate_prob}")
    return problems


# ---- precomputed tables --------------------------------------------------------------------


def _input_cells(kind: Kind, count: int) -> tuple[Cell, ...]:
    return tuple(Cell(kind, i) for i in range(count))


def _output_cells(kind: Kind, count: int) -> tuple[Cell, ...]:
    return tuple(c for c in _input_cells(kind, count) if c not in RESERVED_OUTPUTS)


@dataclass(frozen=True, slots=True)
class _OpPlan:
    """How to draw and alter one op's instructions under one memory configuration."""

    code: int
    outs: tuple[Cell, ...] | None  # candidate outputs; None for `pass`
    ins: tuple[tuple[Cell, ...], ...]  # candidate cells per input
    lit_inits: tuple[LitInit, ...]
    lit_mutations: tuple[LitMutation, ...]
    fields: tuple[str, ...]  # field names by number: in0.., out, literal names
    alter: tuple[int, ...]  # alter_param's equally likely choices (alter_choices)
    combos: int  # cell combinations of a literal-free op: product of the candidate counts
    # Fresh literal-free instructions by combination number, for ops with few combinations:
    # equal instructions are shared (they are immutable), and a lookup costs a tenth of
    # building an Instr. Large memories build instead, so the cache stays small (< 1 MB/op).
    interned: dict[int, Instr] | None


@dataclass(frozen=True, slots=True)
class _Tables:
    plans: tuple[_OpPlan, ...]  # by op code
    allowed: tuple[tuple[_OpPlan, ...], ...]  # per component, duplicates kept
    mutable: tuple[int, ...]  # component indices with a non-empty op list
    handlers: tuple[_Handler, ...]  # the mutation type list, duplicates kept
    names: tuple[str, ...]
    mins: Triple
    maxs: Triple
    dim: int


def alter_choices(op: Op) -> tuple[int, ...]:
    """alter_param's equally likely choices for an instruction of `op`, as field numbers
    (inputs 0.., the output, then the literals; none for `pass`). As the original's
    Instruction::AlterParam: an op with inputs re-draws one input or the output, equal odds;
    an op with literals (none has inputs too) re-draws the output with odds 1/2, else mutates
    one literal, equal odds among them."""
    if op.out is None:
        return ()
    arity, n_lits = op.arity, len(op.literals)
    return (*range(arity), *(arity,) * max(1, n_lits), *range(arity + 1, arity + 1 + n_lits))


def _build_tables(cfg: MutationConfig) -> _Tables:
    memory = cfg.memory
    plans = []
    for op in OPS:
        ins = tuple(_input_cells(k, memory[k]) for k in op.ins)
        outs = _output_cells(op.out, memory[op.out]) if op.out is not None else None
        combos = math.prod(len(c) for c in (*ins, outs or ()))
        fields = (
            (*tuple(f"in{i}" for i in range(op.arity)), "out", *tuple(x.name for x in op.literals))
            if op.out is not None
            else ()
        )
        plans.append(
            _OpPlan(
                op.code,
                outs,
                ins,
                tuple(x.init for x in op.literals),
                tuple(x.mutation for x in op.literals),
                fields,
                alter_choices(op),
                combos,
                {} if combos <= _INTERN_MAX else None,
            )
        )
    allowed = tuple(tuple(plans[code] for code in codes) for codes in cfg.ops)
    return _Tables(
        plans=tuple(plans),
        allowed=allowed,
        mutable=tuple(i for i, codes in enumerate(cfg.ops) if codes),
        handlers=tuple(_HANDLERS[name] for name in cfg.mutation_types),
        names=cfg.mutation_types,
        mins=cfg.min_sizes,
        maxs=cfg.max_sizes,
        dim=cfg.dim,
    )


# ---- draws ---------------------------------------------------------------------------------


class _Draws:
    """Uniforms in [0, 1) pulled from the generator in blocks (a scalar call costs ~1 us)."""

    __slots__ = ("_buf", "_pos", "_rng")

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._buf: list[float] = []
        self._pos = 0

    def u(self) -> float:
        pos = self._pos
        if pos == len(self._buf):
            self._buf = self._rng.random(_BLOCK).tolist()
            pos = 0
        self._pos = pos + 1
        return self._buf[pos]

    def index(self, n: int) -> int:
        """Uniform in [0, n); u * n < n for every float u < 1 and n < 2**53."""
        return int(self.u() * n)

    def gauss(self) -> float:
        """Standard normal by Box-Muller."""
        u1, u2 = self.u(), self.u()
        return math.sqrt(-2.0 * math.log(1.0 - u1)) * math.cos(TWO_PI * u2)


def _init_literal(init: LitInit, d: _Draws, dim: int) -> Literal:
    if init is LitInit.INDEX:
        return d.index(dim)
    if init is LitInit.UNIT:
        return d.u()
    if init is LitInit.PM1:
        return 2.0 * d.u() - 1.0
    while True:  # OPEN_PM1: (-1, 1), so reject the one value that lands on -1
        value = 2.0 * d.u() - 1.0
        if value != -1.0:
            return value


def _mutate_literal(rule: LitMutation, value: Literal, d: _Draws, dim: int) -> Literal:
    if rule is LitMutation.REDRAW_INDEX:
        return d.index(dim)
    if rule is LitMutation.LOG_OR_FLIP and d.u() < _LOG_FLIP_PROB:
        return -float(value)
    return float(value) * math.exp(d.gauss())  # 0 stays 0, the sign is kept


def _fresh(plan: _OpPlan, d: _Draws, dim: int) -> Instr:
    """A fresh instruction of the plan's op: uniform cells (outputs never reserved), literals
    per the op row. Literal-free ops draw their whole cell combination with one uniform."""
    if plan.outs is None:
        return PASS
    if plan.lit_inits:
        ins = tuple([cands[int(d.u() * len(cands))] for cands in plan.ins])
        out = plan.outs[int(d.u() * len(plan.outs))]
        lits = tuple([_init_literal(init, d, dim) for init in plan.lit_inits])
        return Instr(plan.code, out, ins, lits)
    combo = int(d.u() * plan.combos)
    interned = plan.interned
    if interned is None:
        return _decode(plan, combo)
    instr = interned.get(combo)
    if instr is None:
        instr = interned[combo] = _decode(plan, combo)
    return instr


def _decode(plan: _OpPlan, combo: int) -> Instr:
    """The literal-free instruction numbered `combo` in mixed radix (inputs..., output)."""
    assert plan.outs is not None
    combo, io = divmod(combo, len(plan.outs))
    ins: list[Cell] = []
    for cands in reversed(plan.ins):
        combo, i = divmod(combo, len(cands))
        ins.append(cands[i])
    return Instr(plan.code, plan.outs[io], tuple(reversed(ins)))


def _fresh_from(allowed: tuple[_OpPlan, ...], d: _Draws, dim: int) -> Instr:
    return _fresh(allowed[int(d.u() * len(allowed))], d, dim)


# ---- public constructors -------------------------------------------------------------------


def random_instruction(op: int, rng: np.random.Generator, cfg: MutationConfig) -> Instr:
    """A fresh instruction of op `op`: cells uniform (outputs never s0/v0), literals per row."""
    return _fresh(cfg._tables.plans[op], _Draws(rng), cfg.dim)


def empty_program(cfg: MutationConfig) -> Program:
    """All `pass`, of the init sizes."""
    s, p, learn = cfg.init_sizes
    return Program((PASS,) * s, (PASS,) * p, (PASS,) * learn)


def random_program(rng: np.random.Generator, cfg: MutationConfig) -> Program:
    """The empty program with every instruction of every mutable component drawn afresh."""
    t = cfg._tables
    d = _Draws(rng)
    parts = []
    for allowed, size in zip(t.allowed, cfg.init_sizes, strict=True):
        if allowed:
            parts.append(tuple(_fresh_from(allowed, d, t.dim) for _ in range(size)))
        else:
            parts.append((PASS,) * size)
    return Program(parts[0], parts[1], parts[2])


# ---- mutation ------------------------------------------------------------------------------


class MutationRecord(NamedTuple):
    """What one `mutate` call did, for lineage.

    `type` is the mutation type drawn, or "none" when mutate_prob said no. `position` is the
    parent's instruction index (alter_param, randomize_instruction, remove_instruction) or the
    gap the new instruction went into (insert_instruction, trade_instruction); `removed` is
    the index trade_instruction deleted from the enlarged list. `field` is alter_param's field
    ("in0", "in1", "out" or a literal name) and `old`/`new` its values; for instruction-level
    types `old`/`new` are the instructions removed/added.
    """

    # A NamedTuple: a frozen dataclass costs ~2 us to build, a tuple ~0.3 us.
    type: str
    component: Component | None = None
    position: int | None = None
    field: str | None = None
    old: object = None
    new: object = None
    removed: int | None = None


NO_MUTATION = MutationRecord("none")

_Handler = Callable[[Program, _Draws, _Tables], tuple[Program, MutationRecord]]


def _with(program: Program, comp: int, instrs: tuple[Instr, ...]) -> Program:
    if comp == 0:
        return Program(instrs, program.predict, program.learn)
    if comp == 1:
        return Program(program.setup, instrs, program.learn)
    return Program(program.setup, program.predict, instrs)


def _pick_component(d: _Draws, t: _Tables) -> int:
    return t.mutable[int(d.u() * len(t.mutable))]


def _alter_param(p: Program, d: _Draws, t: _Tables) -> tuple[Program, MutationRecord]:
    c = _pick_component(d, t)
    instrs = p.components[c]
    comp = COMPONENTS[c]
    if not instrs:
        return p, MutationRecord("alter_param", comp)
    pos = int(d.u() * len(instrs))
    instr = instrs[pos]
    plan = t.plans[instr.code]
    if not plan.alter:  # `pass` has nothing to alter
        return p, MutationRecord("alter_param", comp, pos)
    f = plan.alter[int(d.u() * len(plan.alter))]
    name = plan.fields[f]
    arity = len(plan.ins)
    old: Literal | Cell | None
    new: Literal | Cell
    out, ins, lits = instr.out, instr.ins, instr.literals
    if f <= arity:
        cands = plan.ins[f] if f < arity else plan.outs
        if not cands:  # a hand-written program may use a kind this memory lacks
            return p, MutationRecord("alter_param", comp, pos, name)
        new = cands[int(d.u() * len(cands))]
        if f < arity:
            old = ins[f]
            ins = (*ins[:f], new, *ins[f + 1 :])
        else:
            old, out = out, new
        if new == old:
            return p, MutationRecord("alter_param", comp, pos, name, old, new)
    else:
        k = f - arity - 1
        old = lits[k]
        new = _mutate_literal(plan.lit_mutations[k], old, d, t.dim)
        lits = (*lits[:k], new, *lits[k + 1 :])
    child = Instr(instr.code, out, ins, lits)
    return (
        _with(p, c, (*instrs[:pos], child, *instrs[pos + 1 :])),
        MutationRecord("alter_param", comp, pos, name, old, new),
    )


def _randomize_instruction(p: Program, d: _Draws, t: _Tables) -> tuple[Program, MutationRecord]:
    c = _pick_component(d, t)
    instrs = p.components[c]
    if not instrs:
        return p, MutationRecord("randomize_instruction", COMPONENTS[c])
    pos = int(d.u() * len(instrs))
    new = _fresh_from(t.allowed[c], d, t.dim)
    return (
        _with(p, c, (*instrs[:pos], new, *instrs[pos + 1 :])),
        MutationRecord("randomize_instruction", COMPONENTS[c], pos, None, instrs[pos], new),
    )


def _randomize_component(p: Program, d: _Draws, t: _Tables) -> tuple[Program, MutationRecord]:
    c = _pick_component(d, t)
    size = len(p.components[c])
    record = MutationRecord("randomize_component", COMPONENTS[c])
    if size == 0:
        return p, record
    allowed, dim = t.allowed[c], t.dim
    return _with(p, c, tuple(_fresh_from(allowed, d, dim) for _ in range(size))), record


def _insert_instruction(p: Program, d: _Draws, t: _Tables) -> tuple[Program, MutationRecord]:
    c = _pick_component(d, t)
    instrs = p.components[c]
    if len(instrs) >= t.maxs[c]:
        return p, MutationRecord("insert_instruction", COMPONENTS[c])
    gap = int(d.u() * (len(instrs) + 1))
    new = _fresh_from(t.allowed[c], d, t.dim)
    return (
        _with(p, c, (*instrs[:gap], new, *instrs[gap:])),
        MutationRecord("insert_instruction", COMPONENTS[c], gap, None, None, new),
    )


def _remove_instruction(p: Program, d: _Draws, t: _Tables) -> tuple[Program, MutationRecord]:
    c = _pick_component(d, t)
    instrs = p.components[c]
    if len(instrs) <= t.mins[c] or not instrs:
        return p, MutationRecord("remove_instruction", COMPONENTS[c])
    pos = int(d.u() * len(instrs))
    return (
        _with(p, c, instrs[:pos] + instrs[pos + 1 :]),
        MutationRecord("remove_instruction", COMPONENTS[c], pos, None, instrs[pos], None),
    )


def _trade_instruction(p: Program, d: _Draws, t: _Tables) -> tuple[Program, MutationRecord]:
    c = _pick_component(d, t)
    instrs = p.components[c]
    gap = int(d.u() * (len(instrs) + 1))
    new = _fresh_from(t.allowed[c], d, t.dim)
    enlarged = (*instrs[:gap], new, *instrs[gap:])
    pos = int(d.u() * len(enlarged))
    record = MutationRecord("trade_instruction", COMPONENTS[c], gap, None, enlarged[pos], new, pos)
    if pos == gap:  # removed what it inserted: the parent as it was
        return p, record
    return _with(p, c, enlarged[:pos] + enlarged[pos + 1 :]), record


def _randomize_algorithm(p: Program, d: _Draws, t: _Tables) -> tuple[Program, MutationRecord]:
    parts = list(p.components)
    for c in t.mutable:
        allowed = t.allowed[c]
        parts[c] = tuple(_fresh_from(allowed, d, t.dim) for _ in range(len(parts[c])))
    return Program(parts[0], parts[1], parts[2]), MutationRecord("randomize_algorithm")


def _identity(p: Program, d: _Draws, t: _Tables) -> tuple[Program, MutationRecord]:
    return p, MutationRecord("identity")


_HANDLERS: dict[str, _Handler] = {
    "alter_param": _alter_param,
    "randomize_instruction": _randomize_instruction,
    "randomize_component": _randomize_component,
    "insert_instruction": _insert_instruction,
    "remove_instruction": _remove_instruction,
    "trade_instruction": _trade_instruction,
    "randomize_algorithm": _randomize_algorithm,
    "identity": _identity,
}


def mutate(
    program: Program, rng: np.random.Generator, cfg: MutationConfig
) -> tuple[Program, MutationRecord]:
    """The child of `program`: with probability mutate_prob exactly one mutation, else the
    parent unchanged. Returns the child and a record of what changed where."""
    t = cfg._tables
    d = _Draws(rng)
    if cfg.mutate_prob < 1.0 and not d.u() < cfg.mutate_prob:
        return program, NO_MUTATION
    i = int(d.u() * len(t.handlers))
    handler = t.handlers[i]
    if not t.mutable and handler is not _identity and handler is not _randomize_algorithm:
        return program, MutationRecord(t.names[i])  # nothing is mutable
    return handler(program, d, t)
