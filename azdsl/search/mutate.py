"""The search space and the mutation of programs: random instructions, programs and mutants.

`MutationConfig` is the search space (memory, op lists, component sizes, mutation types and
mutate_prob), checked when built. The mutations themselves, all eight types, are array code
in azdsl.search.kernel, the one definition the search's compiled loop runs; `mutate` and
`random_program` here run it on a Program (encode, the kernel, decode sharing every untouched
instruction with the parent). Draws come from the counter-based generator of azdsl.running.rng: a
mutation is a pure function of the parent and a 64-bit stream key, so a run's lineage can be
replayed (`mutate_with_key`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from azdsl.errors import ConfigError, Diagnostic
from azdsl.language import liveness
from azdsl.language.ops import OPS, Kind, LitInit, LitMutation, LitType, Op, on_table_change
from azdsl.language.program import (
    COMPONENTS,
    PASS,
    RESERVED_OUTPUTS,
    Cell,
    Component,
    Program,
)
from azdsl.language.rows import KINDS, decode, encoded
from azdsl.search import kernel as kern

RECORD_TYPES = kern.RECORD_TYPES  # what makes an individual (kernel.py's codes)
MUTATION_TYPES = RECORD_TYPES[: kern.NONE]
ORIGINS = RECORD_TYPES[kern.NONE:]  # no mutation drawn, initial, random, injected

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
Arrays = npt.NDArray[Any]


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

    @property
    def memory(self) -> dict[Kind, int]:
        """Cells available per kind."""
        return {Kind.SCALAR: self.scalars, Kind.VECTOR: self.vectors, Kind.MATRIX: self.matrices}

    def mutable_components(self) -> tuple[Component, ...]:
        """Components with a non-empty allowed-op list (the only ones mutations touch)."""
        return tuple(COMPONENTS[c] for c, codes in enumerate(self.ops) if codes)


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


def _input_cells(kind: Kind, count: int) -> tuple[Cell, ...]:
    return tuple(Cell(kind, i) for i in range(count))


def _output_cells(kind: Kind, count: int) -> tuple[Cell, ...]:
    return tuple(c for c in _input_cells(kind, count) if c not in RESERVED_OUTPUTS)


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


# ---- the tables the kernels read -----------------------------------------------------------

_INIT = {LitInit.OPEN_PM1: kern.INIT_OPEN_PM1, LitInit.PM1: kern.INIT_PM1,
         LitInit.UNIT: kern.INIT_UNIT, LitInit.INDEX: kern.INIT_INDEX}
_MUT = {LitMutation.LOG_OR_FLIP: kern.MUT_LOG_OR_FLIP, LitMutation.LOG: kern.MUT_LOG,
        LitMutation.REDRAW_INDEX: kern.MUT_REDRAW_INDEX}


@cache
def op_tables() -> tuple[Arrays, ...]:
    """Facts of every op row as arrays (derived from ops.py, never written here): output
    kind, arity, input kinds, literal count, literal init and mutation rules, literal types,
    partial write, random, cost, alter_param's choices and their number."""
    n = len(OPS)
    choices = [alter_choices(op) for op in OPS]
    out = np.full(n, -1, dtype=np.int64)
    arity = np.zeros(n, dtype=np.int64)
    ins = np.zeros((n, 2), dtype=np.int64)
    nlit = np.zeros(n, dtype=np.int64)
    init = np.zeros((n, 3), dtype=np.int64)
    mut = np.zeros((n, 3), dtype=np.int64)
    littype = np.zeros((n, 3), dtype=np.int64)
    random = np.zeros(n, dtype=np.bool_)
    cost = np.zeros(n, dtype=np.int64)
    alter = np.zeros((n, max(map(len, choices))), dtype=np.int64)
    for op in OPS:
        c = op.code
        out[c] = KINDS.index(op.out) if op.out is not None else -1
        arity[c] = op.arity
        for i, kind in enumerate(op.ins):
            ins[c, i] = KINDS.index(kind)
        nlit[c] = len(op.literals)
        for k, lit in enumerate(op.literals):
            init[c, k] = _INIT[lit.init]
            mut[c, k] = _MUT[lit.mutation]
            littype[c, k] = 1 if lit.type is LitType.INDEX else 0
        random[c] = op.is_random
        cost[c] = op.cost
        alter[c, : len(choices[c])] = choices[c]
    nalter = np.array([len(c) for c in choices], dtype=np.int64)
    return (out, arity, ins, nlit, init, mut, littype, liveness.PARTIAL_WRITE, random, cost,
            alter, nalter)


on_table_change(op_tables.cache_clear)  # user ops join the tables


@cache
def space_arrays(cfg: MutationConfig) -> tuple[Any, ...]:
    """The search space as the kernels read it: cells per kind, allowed ops per component
    (padded) and their counts, the mutable components, the mutation type codes, min and max
    sizes, F, mutate_prob, init sizes."""
    width = max(1, *(len(o) for o in cfg.ops))
    allowed = np.zeros((3, width), dtype=np.int64)
    for c, codes in enumerate(cfg.ops):
        allowed[c, : len(codes)] = codes
    return (
        np.array([cfg.scalars, cfg.vectors, cfg.matrices], dtype=np.int64), allowed,
        np.array([len(o) for o in cfg.ops], dtype=np.int64),
        np.array([c for c in range(3) if cfg.ops[c]], dtype=np.int64),
        np.array([MUTATION_TYPES.index(m) for m in cfg.mutation_types], dtype=np.int64),
        np.array(cfg.min_sizes, dtype=np.int64), np.array(cfg.max_sizes, dtype=np.int64),
        cfg.dim, float(cfg.mutate_prob), np.array(cfg.init_sizes, dtype=np.int64))


# ---- programs -------------------------------------------------------------------------------


class MutationRecord(NamedTuple):
    """What made an individual: `type` is a mutation type, or one of ORIGINS; `component`
    (0 Setup, 1 Predict, 2 Learn) and `position` say where, -1 where it does not apply:
    `position` is the instruction changed or removed, or the gap an inserted one went into
    (insert_instruction, trade_instruction)."""

    type: str
    component: int = -1
    position: int = -1


def empty_program(cfg: MutationConfig) -> Program:
    """All `pass`, of the init sizes."""
    s, p, learn = cfg.init_sizes
    return Program((PASS,) * s, (PASS,) * p, (PASS,) * learn)


def _draws(key: int) -> Arrays:
    return np.array([key & 0xFFFFFFFFFFFFFFFF, 0], dtype=np.uint64)


def random_program_from_key(key: int, cfg: MutationConfig) -> Program:
    """The random program stream `key` draws: every instruction of every component with ops
    drawn afresh (uniform op, cells and literals), the others `pass`, of the init sizes."""
    rows, lits, n = encoded(empty_program(cfg))
    space = space_arrays(cfg)
    t = op_tables()
    kern.random_into(rows, lits, n, _draws(key), t[0], t[1], t[2], t[3], t[4], space[0],
                     space[1], space[2], space[9], space[7])
    return decode(rows, lits, n)


def random_program(rng: np.random.Generator, cfg: MutationConfig) -> Program:
    """A random program (random_program_from_key with a key drawn from `rng`)."""
    return random_program_from_key(int(rng.integers(0, 2**64, dtype=np.uint64)), cfg)


def mutate_with_key(program: Program, key: int, cfg: MutationConfig
                    ) -> tuple[Program, MutationRecord]:
    """The child of `program` that stream `key` draws (as the search draws it), and what
    changed. Untouched instructions, components and programs are the parent's own objects."""
    rows, lits, n = encoded(program, extra=1)
    parent = (program, rows.copy(), lits.copy(), n.copy())
    space = space_arrays(cfg)
    t = op_tables()
    rec = np.full(3, -1, dtype=np.int64)
    kern.mutate_into(rows, lits, n, _draws(key), rec, t[0], t[1], t[2], t[3], t[4], t[5],
                     t[10], t[11], *space[:9])
    record = MutationRecord(RECORD_TYPES[int(rec[0])], int(rec[1]), int(rec[2]))
    return decode(rows, lits, n, parent), record


def mutate(program: Program, rng: np.random.Generator, cfg: MutationConfig) -> Program:
    """The child of `program`: with probability mutate_prob exactly one mutation (of a type
    drawn from the config's list), else the parent itself."""
    return mutate_with_key(program, int(rng.integers(0, 2**64, dtype=np.uint64)), cfg)[0]
