"""Mutation: validity of every mutant, what each type does, the draws' distributions, and the
array kernel (azdsl.search.kernel) against the Program-level oracle (tests/oracle.py)."""

from __future__ import annotations

import math
import pickle
from collections import Counter

import numpy as np
import oracle
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import mutation_config

from azdsl.errors import ConfigError
from azdsl.language.liveness import live_mask
from azdsl.language.ops import OPS, Kind, LitInit, LitType
from azdsl.language.parse import parse
from azdsl.language.printer import unparse
from azdsl.language.program import (
    COMPONENTS,
    PASS,
    RESERVED_OUTPUTS,
    Cell,
    Instr,
    Program,
    literal_key,
    validate,
)
from azdsl.limits import MAX_CELLS
from azdsl.search.mutate import (
    MUTATION_TYPES,
    RECORD_TYPES,
    MutationConfig,
    MutationRecord,
    empty_program,
    mutate,
    mutate_with_key,
    random_program,
    random_program_from_key,
)

BIG = mutation_config(scalars=5, vectors=4, matrices=2, init_sizes=(4, 4, 4),
                      min_sizes=(2, 2, 2), max_sizes=(6, 6, 6))
U64 = st.integers(0, 2**64 - 1)


def slow(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def keys(seed: int, n: int) -> list[int]:
    """n stream keys, as the search draws them."""
    return [int(k) for k in rng(seed).integers(0, 2**64, size=n, dtype=np.uint64)]


def with_types(cfg: MutationConfig, *types: str, **changes: object) -> MutationConfig:
    fields = {
        f: getattr(cfg, f)
        for f in ("dim", "scalars", "vectors", "matrices", "ops", "init_sizes", "min_sizes",
                  "max_sizes", "mutate_prob")
    }
    fields.update(mutation_types=types, mutate_prob=1.0)
    fields.update(changes)
    return MutationConfig(**fields)  # type: ignore[arg-type]


def fits_memory(program: Program, cfg: MutationConfig) -> bool:
    needs = program.memory_needs()
    return all(needs[k] <= cfg.memory[k] for k in Kind)


def usable_ops(scalars: int, vectors: int, matrices: int) -> list[int]:
    memory = {Kind.SCALAR: scalars, Kind.VECTOR: vectors, Kind.MATRIX: matrices}
    writable = {Kind.SCALAR: scalars - 1, Kind.VECTOR: vectors - 1, Kind.MATRIX: matrices}
    return [
        op.code
        for op in OPS
        if all(memory[k] for k in op.ins) and (op.out is None or writable[op.out] > 0)
    ]


def fresh_instrs(code: int, n: int, cfg: MutationConfig = BIG, key: int = 1) -> tuple[Instr, ...]:
    """n fresh instructions of op `code` (a random program whose Setup has only that op)."""
    only = with_types(cfg, "identity", ops=((code,), (), ()), init_sizes=(n, 0, 0),
                      min_sizes=(0, 0, 0), max_sizes=(n, n, n))
    return random_program_from_key(key, only).setup


def changed_field(old: Instr, new: Instr) -> str | None:
    """The one field (in0, in1, out or a literal name) in which `new` differs from `old`."""
    assert new.code == old.code
    fields = [f"in{k}" for k, (a, b) in enumerate(zip(old.ins, new.ins, strict=True)) if a != b]
    fields += ["out"] if old.out != new.out else []
    fields += [lit.name for lit, a, b in zip(old.op.literals, old.literals, new.literals,
                                             strict=True) if literal_key(a) != literal_key(b)]
    assert len(fields) <= 1, (old, new)
    return fields[0] if fields else None


@st.composite
def configs(draw: st.DrawFn) -> MutationConfig:
    scalars = draw(st.integers(2, 5))
    vectors = draw(st.integers(1, 4))
    matrices = draw(st.integers(0, 2))
    usable = usable_ops(scalars, vectors, matrices)
    ops = tuple(
        tuple(draw(st.lists(st.sampled_from(usable), max_size=6))) for _ in COMPONENTS
    )
    mins, maxs, inits = [], [], []
    for _ in COMPONENTS:
        lo = draw(st.integers(0, 3))
        hi = draw(st.integers(lo, lo + 5))
        mins.append(lo)
        maxs.append(hi)
        inits.append(draw(st.integers(lo, hi)))
    return MutationConfig(
        dim=draw(st.integers(1, 4)),
        scalars=scalars,
        vectors=vectors,
        matrices=matrices,
        ops=ops,  # type: ignore[arg-type]
        init_sizes=tuple(inits),  # type: ignore[arg-type]
        min_sizes=tuple(mins),  # type: ignore[arg-type]
        max_sizes=tuple(maxs),  # type: ignore[arg-type]
        mutation_types=tuple(
            draw(st.lists(st.sampled_from(MUTATION_TYPES), min_size=1, max_size=4))
        ),
        mutate_prob=draw(st.one_of(st.sampled_from([0.0, 0.5, 0.9, 1.0]),
                                   st.floats(0.0, 1.0))),
    )


special = st.sampled_from([0.0, -0.0, 0.5, -1.0, math.inf, -math.inf, math.nan, 1e-310, 1e300])
literals = st.one_of(special, st.floats(allow_nan=True, allow_infinity=True))
# Extra weight on `v[i] = c`, `m[i, j] = c` (partial writes), `s = c` and the random ops.
op_codes = st.one_of(st.sampled_from([op.code for op in OPS]),
                     st.sampled_from([0, 56, 57, 58, 59, 60, 63, 64]))


@st.composite
def instrs(draw: st.DrawFn, cells: int = 6, dim: int = 5) -> Instr:
    """Any instruction of any op: cells s0.., v0.., m0.. below `cells` (s0 and v0 as outputs
    too, cells beyond a config's memory too), index literals below `dim`, any floats."""
    op = OPS[draw(op_codes)]
    out = None if op.out is None else Cell(op.out, draw(st.integers(0, cells - 1)))
    ins = tuple(Cell(k, draw(st.integers(0, cells - 1))) for k in op.ins)
    lits = tuple(draw(st.integers(0, dim - 1)) if lit.type is LitType.INDEX else draw(literals)
                 for lit in op.literals)
    return Instr(op.code, out, ins, lits)


def programs(cells: int = 6, size: int = 7) -> st.SearchStrategy[Program]:
    part = st.lists(instrs(cells), max_size=size).map(tuple)
    return st.builds(Program, part, part, part)


# ---- the kernel against the oracle -------------------------------------------------------------


@slow(120)
@given(cfg=configs(), hand=st.one_of(st.none(), programs()), start=U64,
       steps=st.lists(U64, min_size=1, max_size=6))
def test_mutate_with_key_is_the_oracle(cfg: MutationConfig, hand: Program | None, start: int,
                                       steps: list[int]) -> None:
    program = hand if hand is not None else random_program_from_key(start, cfg)
    for key in steps:
        child, record = mutate_with_key(program, key, cfg)
        expected, expected_record = oracle.mutate(program, key, cfg)
        assert child == expected
        assert record == expected_record and isinstance(record, MutationRecord)
        if expected is program:  # nothing changed: the parent object itself
            assert child is program
        program = child


# Chains of mutants in a few spaces, many keys each: the oracle's rarer branches (a flip's
# odds, a literal's rejection, `pass`, cells the memory lacks) come up too.
CHAIN_SPACES = [
    with_types(BIG, *MUTATION_TYPES),
    with_types(BIG, *MUTATION_TYPES, "alter_param", "alter_param", scalars=3, vectors=2,
               matrices=0, dim=2, mutate_prob=0.7,
               ops=((0, 56, 57, 59, 62), (0, 1, 18, 27, 57), (0, 2, 23, 60, 63)),
               init_sizes=(3, 2, 3), min_sizes=(1, 0, 0), max_sizes=(5, 3, 8)),
    with_types(BIG, "alter_param", "insert_instruction", "remove_instruction",
               "trade_instruction", ops=((58, 61, 64, 0), (), (31, 28, 21)),
               init_sizes=(2, 0, 1), min_sizes=(0, 0, 0), max_sizes=(4, 2, 4)),
]


@pytest.mark.parametrize("space", range(len(CHAIN_SPACES)))
def test_long_chains_of_mutants_are_the_oracles(space: int) -> None:
    cfg = CHAIN_SPACES[space]
    hand = parse("def Setup():\n  m5 = transpose(m7)\n  s2 = -0.0\n  v1[1] = 0.5\n"
                 "def Predict():\n  s1 = dot(v0, v1)\n  pass\n"
                 "def Learn():\n  s3 = gaussian(0.1, 0.2)\n  v1 = s3 * v0\n")
    for start, program in enumerate((random_program_from_key(space, cfg), hand)):
        types: Counter[str] = Counter()
        for key in keys(100 * space + start, 1500):
            assert live_mask(program) == oracle.live_mask(program)
            child, record = mutate_with_key(program, key, cfg)
            expected, expected_record = oracle.mutate(program, key, cfg)
            assert (child, record) == (expected, expected_record)
            if expected is program:
                assert child is program
            types[record.type] += 1
            program = child
        assert set(types) == set(cfg.mutation_types) | ({"none"} if cfg.mutate_prob < 1 else set())
    for key in keys(space, 300):
        assert random_program_from_key(key, cfg) == oracle.random_program(key, cfg)


@slow(80)
@given(cfg=configs(), key=U64)
def test_random_program_from_key_is_the_oracle(cfg: MutationConfig, key: int) -> None:
    program = random_program_from_key(key, cfg)
    assert program == oracle.random_program(key, cfg)
    assert program.sizes() == cfg.init_sizes


@slow(200)
@given(program=st.one_of(programs(cells=3, size=8), programs(cells=6, size=8)))
def test_live_mask_is_the_oracle(program: Program) -> None:
    assert live_mask(program) == oracle.live_mask(program)


@slow(40)
@given(cfg=configs(), key=U64)
def test_live_mask_of_random_programs_and_mutants_is_the_oracle(cfg: MutationConfig,
                                                                key: int) -> None:
    program = random_program_from_key(key, cfg)
    for step in keys(key % 2**32, 5):
        assert live_mask(program) == oracle.live_mask(program)
        program = mutate_with_key(program, step, cfg)[0]


def test_live_mask_sees_partial_writes_and_the_loop() -> None:
    program = parse(
        "def Setup():\n  v1[2] = 0.5\n  v1 = uniform(-1.0, 1.0)\n  s3 = 0.1\n"
        "def Predict():\n  v1[0] = 1.0\n  s1 = dot(v0, v1)\n  s2 = s1 * s1\n"
        "def Learn():\n  s3 = s3 * s0\n  v1 = s3 * v0\n  s2 = s0 - s1\n")
    assert live_mask(program) == oracle.live_mask(program) == (
        (False, True, True), (True, True, False), (True, True, False))


def test_mutate_and_random_program_draw_one_key_from_the_generator() -> None:
    cfg = with_types(BIG, *MUTATION_TYPES)
    key = keys(3, 1)[0]
    parent = random_program(rng(3), cfg)
    assert parent == random_program_from_key(key, cfg)
    assert mutate(parent, rng(3), cfg) == mutate_with_key(parent, key, cfg)[0]
    assert mutate(parent, rng(3), cfg) == oracle.mutate(parent, key, cfg)[0]


# ---- config ------------------------------------------------------------------------------


def test_defaults_are_the_demo() -> None:
    cfg = MutationConfig()
    spellings = {OPS[c].spelling() for c in cfg.ops[0]}
    assert spellings == {"s = c", "s = dot(a, b)", "s = a - b", "s = a * b", "v = a * b",
                         "v = a + b"}
    assert (cfg.scalars, cfg.vectors, cfg.matrices, cfg.dim) == (4, 3, 1, 4)
    assert cfg.init_sizes == (10, 2, 8) and cfg.mutate_prob == 0.9
    assert cfg.mutable_components() == COMPONENTS


def test_record_types_are_the_mutation_types_then_the_origins() -> None:
    assert (*MUTATION_TYPES, "none", "initial", "random", "injected") == RECORD_TYPES
    assert MutationRecord("identity") == ("identity", -1, -1)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"scalars": 1}, "at least 2 scalars"),
        ({"matrices": 0, "ops": ((37,), (), ())}, "matrix"),
        ({"vectors": 1, "ops": ((), (23,), ())}, "writable vector"),
        ({"ops": ((99,), (), ())}, "no op with code 99"),
        ({"min_sizes": (3, 0, 0), "max_sizes": (2, 5, 5)}, "0 <= min <= max"),
        ({"mutation_types": ("grow",)}, "unknown mutation type 'grow'"),
        ({"mutation_types": ()}, "empty"),
        ({"mutate_prob": 1.5}, "mutate_prob"),
        ({"dim": 0}, "dim"),
        ({"ops": ((1,), (1,))}, "one entry per component"),
    ],
)
def test_bad_configs_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        MutationConfig(**changes)  # type: ignore[arg-type]


def test_configs_accept_lists_and_stay_hashable() -> None:
    listed = MutationConfig(ops=[[56, 27], [], [2]], init_sizes=[1, 2, 3],  # type: ignore[arg-type]
                            mutation_types=["identity"])  # type: ignore[arg-type]
    tupled = MutationConfig(ops=((56, 27), (), (2,)), init_sizes=(1, 2, 3),
                            mutation_types=("identity",))
    assert listed == tupled and hash(listed) == hash(tupled)


def test_large_memories_draw_valid_instructions() -> None:
    cfg = with_types(BIG, *MUTATION_TYPES, scalars=40, vectors=40, matrices=40)
    program = random_program_from_key(22, cfg)
    for key in keys(22, 200):
        program = mutate_with_key(program, key, cfg)[0]
        validate(program, cfg.dim)
        assert fits_memory(program, cfg)
    assert max(program.memory_needs().values()) > 10


def test_configs_pickle_small_and_mutate_alike() -> None:
    cfg = MutationConfig()
    random_program(rng(), cfg)  # builds the cached arrays, which must not travel
    data = pickle.dumps(cfg)
    loaded = pickle.loads(data)
    assert loaded == cfg and len(data) < 2000
    parent = random_program(rng(), cfg)
    for key in keys(3, 20):
        assert mutate_with_key(parent, key, loaded) == mutate_with_key(parent, key, cfg)


# ---- fresh instructions and programs ---------------------------------------------------------


def test_fresh_instructions_fit_their_row_and_the_memory() -> None:
    for code in usable_ops(BIG.scalars, BIG.vectors, BIG.matrices):
        for instr in fresh_instrs(code, 20, key=code):
            validate(Program((instr,)), BIG.dim)
            assert instr.code == code
            if instr.out is not None:
                assert instr.out not in RESERVED_OUTPUTS
            assert fits_memory(Program((instr,)), BIG)


def test_fresh_literals_follow_their_init_rule() -> None:
    seen: dict[LitInit, list[float]] = {init: [] for init in LitInit}
    for op in OPS:
        if not op.literals:
            continue
        for instr in fresh_instrs(op.code, 300, key=op.code):
            for lit, value in zip(op.literals, instr.literals, strict=True):
                assert isinstance(value, int if lit.type is LitType.INDEX else float)
                seen[lit.init].append(float(value))
    open_pm1 = np.array(seen[LitInit.OPEN_PM1])
    assert (open_pm1 > -1).all() and (open_pm1 < 1).all() and open_pm1.min() < -0.9
    pm1 = np.array(seen[LitInit.PM1])
    assert (pm1 >= -1).all() and (pm1 < 1).all() and pm1.min() < -0.99 and pm1.max() > 0.99
    unit = np.array(seen[LitInit.UNIT])
    assert (unit >= 0).all() and (unit < 1).all() and unit.max() > 0.99
    assert set(seen[LitInit.INDEX]) == set(range(BIG.dim))


def test_fresh_cells_are_uniform() -> None:
    # `v = m @ v`: inputs over m0..m1 and v0..v3, output over v1..v3 only.
    code = next(op.code for op in OPS if op.func == "@" and op.out is Kind.VECTOR)
    n = 6000
    instrs = fresh_instrs(code, n, key=3)
    for counts, cells in (
        (Counter(i.ins[0] for i in instrs), BIG.matrices),
        (Counter(i.ins[1] for i in instrs), BIG.vectors),
        (Counter(i.out for i in instrs), BIG.vectors - 1),
    ):
        assert len(counts) == cells
        for count in counts.values():
            assert abs(count / n - 1 / cells) < 0.03
    assert Cell(Kind.VECTOR, 0) not in {i.out for i in instrs}


def test_pass_is_the_blank_instruction() -> None:
    assert set(fresh_instrs(0, 5)) == {PASS}


def test_empty_program_is_all_pass_of_the_init_sizes() -> None:
    cfg = MutationConfig(init_sizes=(3, 1, 2))
    program = empty_program(cfg)
    assert program.sizes() == (3, 1, 2)
    assert set(program.instructions()) == {PASS}


def test_random_program_draws_only_mutable_components_and_allowed_ops() -> None:
    setup_ops = (56, 56, 27)
    cfg = MutationConfig(ops=(setup_ops, (), (2,)), init_sizes=(50, 3, 4))
    program = random_program(rng(4), cfg)
    assert program.sizes() == (50, 3, 4)
    assert program.predict == (PASS,) * 3
    assert {i.code for i in program.setup} == {56, 27}
    assert {i.code for i in program.learn} == {2}
    share = sum(i.code == 56 for i in program.setup) / 50
    assert 0.45 < share < 0.9  # duplicates weigh more (2/3)


def test_random_programs_differ_by_key_and_repeat_by_key() -> None:
    a, b = keys(5, 2)
    assert random_program_from_key(a, BIG) == random_program_from_key(a, BIG)
    assert random_program_from_key(a, BIG) != random_program_from_key(b, BIG)


# ---- every mutant is valid ---------------------------------------------------------------------


@slow(40)
@given(cfg=configs(), seed=st.integers(0, 2**32 - 1))
def test_every_mutant_is_valid_and_round_trips(cfg: MutationConfig, seed: int) -> None:
    program = random_program(rng(seed), cfg)
    for key in keys(seed, 15):
        child, record = mutate_with_key(program, key, cfg)
        validate(child, cfg.dim)
        assert fits_memory(child, cfg)
        for size, old, lo, hi in zip(
            child.sizes(), program.sizes(), cfg.min_sizes, cfg.max_sizes, strict=True
        ):
            assert min(lo, old) <= size <= max(hi, old)
        assert not {i.out for i in child.instructions()} & RESERVED_OUTPUTS
        assert record.type == "none" or record.type in cfg.mutation_types
        assert record.component in (-1, 0, 1, 2)
        assert -1 <= record.position <= max(program.sizes())
        assert parse(unparse(child)) == child
        program = child


def test_mutants_of_a_hand_written_program_round_trip() -> None:
    seed = parse(
        "def Setup():\n  s2 = 0.01\n  v1 = gaussian(0.0, 0.1)\n"
        "def Predict():\n  s1 = dot(v0, v1)\n"
        "def Learn():\n  s3 = s0 - s1\n  s3 = s2 * s3\n  v2 = s3 * v0\n  v1 = v1 + v2\n"
    )
    cfg = with_types(BIG, *MUTATION_TYPES)
    for key in keys(5, 300):
        child = mutate_with_key(seed, key, cfg)[0]
        assert parse(unparse(child)) == child


# ---- determinism and sharing -------------------------------------------------------------------


def test_same_seed_same_mutants() -> None:
    def lineage(seed: int) -> list[Program]:
        r = rng(seed)
        program = random_program(r, BIG)
        out = []
        for _ in range(50):
            program = mutate(program, r, BIG)
            out.append(program)
        return out

    assert lineage(7) == lineage(7)
    assert lineage(7) != lineage(8)


def _shared(new: tuple[Instr, ...], old: tuple[Instr, ...], skip: int) -> bool:
    """Every instruction of `new` but the one at `skip` is one of `old`'s own objects."""
    return all(any(a is b for b in old) for k, a in enumerate(new) if k != skip)


def test_untouched_instructions_are_shared_with_the_parent() -> None:
    parent = random_program(rng(9), BIG)
    seen: Counter[str] = Counter()
    for key in keys(9, 600):
        child, record = mutate_with_key(parent, key, BIG)
        kind, c, pos = record
        seen[kind] += child is not parent
        if kind == "identity":
            assert child is parent
        if kind == "randomize_algorithm":
            continue
        for other in range(3):
            if other != c:
                assert child.components[other] is parent.components[other]
        if child is parent:
            continue
        old, new = parent.components[c], child.components[c]
        if kind in ("alter_param", "randomize_instruction"):
            assert new[:pos] + new[pos + 1:] == old[:pos] + old[pos + 1:]
            assert _shared(new, old, pos)
        elif kind == "insert_instruction":
            assert new[:pos] + new[pos + 1:] == old
            assert _shared(new, old, pos)
        elif kind == "remove_instruction":
            assert new == old[:pos] + old[pos + 1:]
            assert _shared(new, old, -1)
    # every type but identity changed something
    assert set(seen) == set(MUTATION_TYPES) and seen["identity"] == 0
    assert all(seen[kind] for kind in MUTATION_TYPES if kind != "identity")


# ---- what each type does ------------------------------------------------------------------------


def test_identity_returns_the_parent() -> None:
    parent = random_program(rng(), BIG)
    child, record = mutate_with_key(parent, 1, with_types(BIG, "identity"))
    assert child is parent and record == ("identity", -1, -1)


def test_mutate_prob_is_respected() -> None:
    parent = random_program(rng(), BIG)
    n = 4000
    for prob, expected in ((0.0, 1.0), (0.3, 0.7), (1.0, 0.0)):
        cfg = with_types(BIG, "randomize_instruction", mutate_prob=prob)
        records = [mutate_with_key(parent, key, cfg)[1] for key in keys(10, n)]
        untouched = sum(rec == ("none", -1, -1) for rec in records) / n
        assert abs(untouched - expected) < 0.03
        r = rng(11)
        assert all(mutate(parent, r, cfg) is parent for _ in range(20)) == (prob == 0.0)


def test_mutation_types_and_components_are_drawn_uniformly_with_weights() -> None:
    cfg = with_types(BIG, "identity", "identity", "remove_instruction", ops=((1,), (), (2, 3)))
    parent = random_program(rng(), cfg)
    records = [mutate_with_key(parent, key, cfg)[1] for key in keys(11, 6000)]
    types = Counter(rec.type for rec in records)
    assert abs(types["identity"] / 6000 - 2 / 3) < 0.03
    comps = Counter(rec.component for rec in records if rec.type == "remove_instruction")
    assert set(comps) == {0, 2}
    assert abs(comps[0] / sum(comps.values()) - 0.5) < 0.05


def _instr_of(name: str) -> Instr:
    """An instruction of the op named `name`, valid in BIG's memory."""
    op = OPS[next(o.code for o in OPS if o.name == name)]
    assert op.out is not None
    ins = tuple(Cell(k, 1) for k in op.ins)
    lits = tuple(1 if lit.type is LitType.INDEX else 0.5 for lit in op.literals)
    return Instr(op.code, Cell(op.out, 1), ins, lits)


# The original's Instruction::AlterParam (reference §2.3): inputs and output with equal odds;
# for ops with literals the output 1/2, the literals sharing the other half.
@pytest.mark.parametrize(("name", "odds"), [
    ("SCALAR_SUM", {"in0": 1 / 3, "in1": 1 / 3, "out": 1 / 3}),
    ("VECTOR_ABS", {"in0": 1 / 2, "out": 1 / 2}),
    ("SCALAR_CONST_SET", {"out": 1 / 2, "c": 1 / 2}),
    ("VECTOR_CONST_SET", {"out": 1 / 2, "i": 1 / 4, "c": 1 / 4}),
    ("MATRIX_CONST_SET", {"out": 1 / 2, "i": 1 / 6, "j": 1 / 6, "c": 1 / 6}),
    ("VECTOR_UNIFORM_SET", {"out": 1 / 2, "lo": 1 / 4, "hi": 1 / 4}),
    ("MATRIX_GAUSSIAN_SET", {"out": 1 / 2, "mean": 1 / 4, "std": 1 / 4}),
])
def test_alter_param_picks_fields_with_the_originals_odds(name: str,
                                                          odds: dict[str, float]) -> None:
    # A large memory and F, so a re-drawn cell or index almost never equals the old one and
    # the field drawn shows in the child (a redraw to the same value changes nothing).
    cfg = with_types(BIG, "alter_param", ops=((0,), (), ()), scalars=200, vectors=200,
                     matrices=200, dim=200)
    parent = Program((_instr_of(name),))
    n = 6000
    counts: Counter[str | None] = Counter()
    for key in keys(12, n):
        child, rec = mutate_with_key(parent, key, cfg)
        assert rec == ("alter_param", 0, 0)
        counts[changed_field(parent.setup[0], child.setup[0])] += 1
    assert counts.pop(None, 0) < 0.01 * n
    assert set(counts) == set(odds)
    for field, p in odds.items():  # 5 standard errors at most
        assert abs(counts[field] / n - p) < 5 * math.sqrt(p * (1 - p) / n), field


def test_alter_param_changes_one_field_of_the_recorded_instruction() -> None:
    cfg = with_types(BIG, "alter_param")
    parent = random_program(rng(13), cfg)
    fields: Counter[str | None] = Counter()
    for key in keys(13, 500):
        child, (_, c, pos) = mutate_with_key(parent, key, cfg)
        if child is parent:
            continue
        old, new = parent.components[c], child.components[c]
        assert old[:pos] + old[pos + 1:] == new[:pos] + new[pos + 1:]
        fields[changed_field(old[pos], new[pos])] += 1
        parent = child
    assert None not in fields and {"in0", "in1", "out"} <= set(fields)


def test_alter_param_leaves_pass_alone() -> None:
    parent = Program((PASS,), (PASS,), (PASS,))
    child, rec = mutate_with_key(parent, 1, with_types(BIG, "alter_param"))
    assert child is parent and rec.type == "alter_param" and rec.position == 0


def _literal_mutations(code: int, lits: tuple[float | int, ...], field: str,
                       n: int = 4000) -> list[tuple[float | int, float | int]]:
    """(old, new) of literal `field` over the children that changed it."""
    op = OPS[code]
    assert op.out is not None
    instr = Instr(code, Cell(op.out, 2 if op.out is Kind.SCALAR else 1), (), lits)
    parent = Program((instr,))
    cfg = with_types(BIG, "alter_param", ops=((0,), (), ()))
    k = [lit.name for lit in op.literals].index(field)
    pairs = []
    for key in keys(14, n):
        child = mutate_with_key(parent, key, cfg)[0].setup[0]
        if changed_field(instr, child) == field:
            pairs.append((instr.literals[k], child.literals[k]))
    return pairs


def test_literal_log_scale_or_flip() -> None:
    const = next(op.code for op in OPS if op.out is Kind.SCALAR and op.literals
                 and op.form.value == "const")
    pairs = _literal_mutations(const, (0.5,), "c")
    ratios = np.array([new / old for old, new in pairs])
    flipped = ratios == -1.0
    assert abs(flipped.mean() - 0.1) < 0.02
    logs = np.log(ratios[~flipped])
    assert (ratios[~flipped] > 0).all()
    assert abs(logs.mean()) < 0.08 and abs(logs.std() - 1.0) < 0.08


def test_literal_log_scale_never_flips_a_std() -> None:
    gauss = next(op.code for op in OPS if op.func == "gaussian" and op.out is Kind.SCALAR)
    pairs = _literal_mutations(gauss, (0.3, 0.2), "std")
    assert pairs and all(new > 0 for _, new in pairs)
    mean_pairs = _literal_mutations(gauss, (0.3, 0.2), "mean")
    assert any(new == -old for old, new in mean_pairs)


def test_literal_zero_stays_zero_and_index_redraws_in_range() -> None:
    const = next(op.code for op in OPS if op.out is Kind.SCALAR and op.form.value == "const")
    zeros = _literal_mutations(const, (0.0,), "c", 500)
    assert zeros and all(new == 0.0 for _, new in zeros)  # only a flip shows: -0.0
    set_mat = next(op.code for op in OPS if op.out is Kind.MATRIX and op.form.value == "const")
    news = [new for _, new in _literal_mutations(set_mat, (0, 0, 1.0), "j", 3000)]
    assert set(news) == set(range(1, BIG.dim))  # a redraw of 0 changes nothing
    assert all(type(x) is int for x in news)


def test_insert_never_exceeds_max_and_positions_are_uniform() -> None:
    cfg = with_types(BIG, "insert_instruction", ops=((1,), (), ()), min_sizes=(0, 0, 0),
                     max_sizes=(3, 3, 3))
    full = Program((PASS,) * 3)
    assert all(mutate_with_key(full, key, cfg) == (full, ("insert_instruction", 0, -1))
               for key in keys(15, 50))
    over = Program((PASS,) * 5)  # a hand-written program may start above the max
    assert mutate_with_key(over, 1, cfg)[0] is over
    parent = Program((PASS, PASS))
    gaps: Counter[int] = Counter()
    for key in keys(16, 3000):
        child, rec = mutate_with_key(parent, key, cfg)
        assert len(child.setup) == 3 and rec.component == 0
        assert child.setup[rec.position].code == 1
        assert child.setup[:rec.position] + child.setup[rec.position + 1:] == parent.setup
        gaps[rec.position] += 1
    assert set(gaps) == {0, 1, 2} and all(abs(c / 3000 - 1 / 3) < 0.04 for c in gaps.values())


def test_remove_never_goes_below_min() -> None:
    cfg = with_types(BIG, "remove_instruction", ops=((1,), (), ()), min_sizes=(2, 0, 0))
    parent = random_program(rng(16), with_types(cfg, "identity", init_sizes=(5, 0, 0)))
    sizes = []
    for key in keys(16, 10):
        child, (_, c, pos) = mutate_with_key(parent, key, cfg)
        sizes.append(len(child.setup))
        if child is not parent:
            assert child.setup == parent.setup[:pos] + parent.setup[pos + 1:]
        else:
            assert (c, pos) == (0, -1)
        parent = child
    assert sizes == [4, 3, 2, 2, 2, 2, 2, 2, 2, 2]


def test_trade_keeps_size_and_randomize_component_keeps_size() -> None:
    for seed, kind in enumerate(("trade_instruction", "randomize_component",
                                 "randomize_algorithm")):
        cfg = with_types(BIG, kind)
        parent = random_program(rng(17 + seed), cfg)
        for key in keys(17 + seed, 200):
            child = mutate_with_key(parent, key, cfg)[0]
            assert child.sizes() == parent.sizes()
            parent = child


def test_trade_inserts_then_removes_from_the_enlarged_list() -> None:
    cfg = with_types(BIG, "trade_instruction", ops=((1,), (), ()))
    # distinct instructions of op 2, so what was removed shows
    parent = Program(tuple(Instr(2, Cell(Kind.SCALAR, 1 + k), (Cell(Kind.SCALAR, k),) * 2)
                           for k in range(4)))
    size = len(parent.setup)
    n = 3000
    removed: Counter[int] = Counter()
    for key in keys(18, n):
        child, (_, c, gap) = mutate_with_key(parent, key, cfg)
        assert c == 0 and 0 <= gap <= size and child.sizes() == parent.sizes()
        new = [i for i in child.setup if i.code == 1]
        if child is parent:
            assert not new
            removed[gap] += 1
            continue
        assert len(new) == 1
        enlarged = [*parent.setup[:gap], new[0], *parent.setup[gap:]]
        which = [r for r in range(size + 1) if enlarged[:r] + enlarged[r + 1:] == list(child.setup)]
        assert len(which) == 1 and which[0] != gap
        removed[which[0]] += 1
    # any of the enlarged list, uniformly, the inserted one too (then the parent is kept)
    assert set(removed) == set(range(size + 1))
    assert all(abs(c / n - 1 / (size + 1)) < 0.04 for c in removed.values())


def test_randomize_component_replaces_one_component_with_allowed_ops() -> None:
    cfg = with_types(BIG, "randomize_component", ops=((1,), (3,), ()))
    parent = empty_program(cfg)
    for key in keys(19, 50):
        child, rec = mutate_with_key(parent, key, cfg)
        assert rec.component in (0, 1) and rec.position == -1
        assert child.learn is parent.learn
        assert child.components[1 - rec.component] is parent.components[1 - rec.component]
        assert {i.code for i in child.components[rec.component]} == {(1, 3)[rec.component]}


def test_randomize_algorithm_is_a_fresh_random_program_of_the_same_sizes() -> None:
    cfg = with_types(BIG, "randomize_algorithm", ops=((1,), (), (2,)))
    parent = empty_program(cfg)
    child, rec = mutate_with_key(parent, 20, cfg)
    assert rec == ("randomize_algorithm", -1, -1)
    assert child.predict is parent.predict
    assert {i.code for i in child.setup} == {1} and {i.code for i in child.learn} == {2}


def test_empty_components_are_left_alone_by_instruction_level_types() -> None:
    parent = Program((), (), ())
    for kind in ("alter_param", "randomize_instruction", "randomize_component",
                 "remove_instruction"):
        for key in keys(21, 5):
            child, rec = mutate_with_key(parent, key, with_types(BIG, kind))
            assert child is parent and rec.type == kind and rec.position == -1
            assert rec.component in (0, 1, 2)


def test_nothing_mutable_leaves_the_program_alone() -> None:
    cfg = with_types(BIG, "alter_param", "insert_instruction", ops=((), (), ()))
    parent = random_program(rng(), cfg)
    for key in keys(22, 20):
        child, rec = mutate_with_key(parent, key, cfg)
        assert child is parent and rec.component == -1 and rec.position == -1


def test_cells_of_a_memory_the_config_lacks_are_kept_not_redrawn() -> None:
    cfg = with_types(BIG, "alter_param", matrices=0, ops=((1,), (), ()))
    transpose = next(op.code for op in OPS if op.func == "transpose")
    instr = Instr(transpose, Cell(Kind.MATRIX, 5), (Cell(Kind.MATRIX, 7),))
    parent = Program((instr,))
    for key in keys(21, 30):
        assert mutate_with_key(parent, key, cfg) == oracle.mutate(parent, key, cfg)
        assert mutate_with_key(parent, key, cfg)[0] is parent


def test_log_scale_handles_non_finite_literals() -> None:
    const = next(op.code for op in OPS if op.out is Kind.SCALAR and op.form.value == "const")
    cfg = with_types(BIG, "alter_param", ops=((0,), (), ()))
    for value in (math.inf, -math.inf):
        parent = Program((Instr(const, Cell(Kind.SCALAR, 2), (), (value,)),))
        flips = 0
        for key in keys(23, 200):
            (new,) = mutate_with_key(parent, key, cfg)[0].setup[0].literals
            assert math.isinf(new)
            flips += new == -value
        assert flips


# ---- large memories -----------------------------------------------------------------------------


def test_memories_up_to_max_cells_keep_their_kinds() -> None:
    code = next(op.code for op in OPS if op.name == "SCALAR_SUM")
    cfg = with_types(BIG, "alter_param", scalars=MAX_CELLS, ops=((code,), (), ()),
                     init_sizes=(50, 0, 0), max_sizes=(50, 50, 50))
    program = random_program_from_key(1, cfg)
    assert {c.kind for i in program.setup for c in i.cells()} == {Kind.SCALAR}
    assert max(c.index for i in program.setup for c in i.cells()) > 256
    assert program == oracle.random_program(1, cfg)
    for key in keys(1, 50):
        assert mutate_with_key(program, key, cfg) == oracle.mutate(program, key, cfg)


def test_live_mask_of_the_highest_cells() -> None:
    top = MAX_CELLS - 1
    program = parse(f"def Setup():\n  s{top} = 0.5\n  v{top} = s{top} * v0\n"
                    f"  m{top} = m0 + m0\ndef Predict():\n  s1 = dot(v{top}, v{top})\n")
    assert live_mask(program) == oracle.live_mask(program) == ((True, True, False), (True,), ())
