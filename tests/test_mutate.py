"""Mutation: validity of every mutant, what each type does, the draws' distributions."""

from __future__ import annotations

import math
import pickle
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import mutation_config

from azdsl.errors import ConfigError
from azdsl.mutate import (
    MUTATION_TYPES,
    MutationConfig,
    MutationRecord,
    empty_program,
    mutate,
    random_instruction,
    random_program,
)
from azdsl.ops import OPS, Kind, LitInit, LitType
from azdsl.parse import parse
from azdsl.printer import unparse
from azdsl.program import COMPONENTS, PASS, RESERVED_OUTPUTS, Cell, Instr, Program, validate

BIG = mutation_config(scalars=5, vectors=4, matrices=2, init_sizes=(4, 4, 4),
                      min_sizes=(2, 2, 2), max_sizes=(6, 6, 6))


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def with_types(cfg: MutationConfig, *types: str, **changes: object) -> MutationConfig:
    fields = {
        f: getattr(cfg, f)
        for f in (
            "dim",
            "scalars",
            "vectors",
            "matrices",
            "ops",
            "init_sizes",
            "min_sizes",
            "max_sizes",
            "mutate_prob",
        )
    }
    fields.update(mutation_types=types, mutate_prob=1.0)
    fields.update(changes)
    return MutationConfig(**fields)


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
        mutate_prob=draw(st.sampled_from([0.0, 0.5, 0.9, 1.0])),
    )


# ---- config ------------------------------------------------------------------------------


def test_defaults_are_the_demo() -> None:
    cfg = MutationConfig()
    spellings = {OPS[c].spelling() for c in cfg.ops[0]}
    assert spellings == {"s = c", "s = dot(a, b)", "s = a - b", "s = a * b", "v = a * b",
                         "v = a + b"}
    assert (cfg.scalars, cfg.vectors, cfg.matrices, cfg.dim) == (4, 3, 1, 4)
    assert cfg.init_sizes == (10, 2, 8) and cfg.mutate_prob == 0.9
    assert cfg.mutable_components() == COMPONENTS


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


def test_large_memories_draw_valid_instructions_without_interning() -> None:
    cfg = with_types(BIG, *MUTATION_TYPES, scalars=40, vectors=40, matrices=40)
    r = rng(22)
    program = random_program(r, cfg)
    for _ in range(200):
        program, _ = mutate(program, r, cfg)
        validate(program, cfg.dim)
        assert fits_memory(program, cfg)
    assert max(program.memory_needs().values()) > 10


def test_configs_pickle_small_and_mutate_alike() -> None:
    cfg = MutationConfig()
    random_program(rng(), cfg)  # fills the interning cache, which must not travel
    data = pickle.dumps(cfg)
    loaded = pickle.loads(data)
    assert loaded == cfg and len(data) < 2000
    parent = random_program(rng(), cfg)
    assert mutate(parent, rng(3), loaded) == mutate(parent, rng(3), cfg)


# ---- fresh instructions and programs ---------------------------------------------------------


def test_random_instruction_fits_its_row_and_the_memory() -> None:
    r = rng(1)
    for code in usable_ops(BIG.scalars, BIG.vectors, BIG.matrices):
        for _ in range(20):
            instr = random_instruction(code, r, BIG)
            validate(Program((instr,)), BIG.dim)
            if instr.out is not None:
                assert instr.out not in RESERVED_OUTPUTS
            assert fits_memory(Program((instr,)), BIG)


def test_random_instruction_literals_follow_their_init_rule() -> None:
    r = rng(2)
    seen: dict[LitInit, list[float]] = {init: [] for init in LitInit}
    for op in OPS:
        if not op.literals:
            continue
        for _ in range(300):
            instr = random_instruction(op.code, r, BIG)
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


def test_random_instruction_cells_are_uniform() -> None:
    # `v = m @ v`: inputs over m0..m1 and v0..v3, output over v1..v3 only.
    code = next(op.code for op in OPS if op.func == "@" and op.out is Kind.VECTOR)
    r = rng(3)
    n = 6000
    instrs = [random_instruction(code, r, BIG) for _ in range(n)]
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
    assert random_instruction(0, rng(), BIG) == PASS


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


# ---- every mutant is valid ---------------------------------------------------------------------


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=configs(), seed=st.integers(0, 2**32 - 1))
def test_every_mutant_is_valid_and_round_trips(cfg: MutationConfig, seed: int) -> None:
    r = rng(seed)
    program = random_program(r, cfg)
    for _ in range(15):
        child, record = mutate(program, r, cfg)
        validate(child, cfg.dim)
        assert fits_memory(child, cfg)
        for size, old, lo, hi in zip(
            child.sizes(), program.sizes(), cfg.min_sizes, cfg.max_sizes, strict=True
        ):
            assert min(lo, old) <= size <= max(hi, old)
        assert not {i.out for i in child.instructions()} & RESERVED_OUTPUTS
        assert record.type in (*MUTATION_TYPES, "none")
        assert record.type == "none" or record.type in cfg.mutation_types
        assert parse(unparse(child)) == child
        program = child


def test_mutants_of_a_hand_written_program_round_trip() -> None:
    seed = parse(
        "def Setup():\n  s2 = 0.01\n  v1 = gaussian(0.0, 0.1)\n"
        "def Predict():\n  s1 = dot(v0, v1)\n"
        "def Learn():\n  s3 = s0 - s1\n  s3 = s2 * s3\n  v2 = s3 * v0\n  v1 = v1 + v2\n"
    )
    cfg = with_types(BIG, *MUTATION_TYPES)
    r = rng(5)
    for _ in range(300):
        child, _ = mutate(seed, r, cfg)
        assert parse(unparse(child)) == child


# ---- determinism and sharing -------------------------------------------------------------------


def test_same_seed_same_mutants() -> None:
    def lineage(seed: int) -> list[tuple[Program, MutationRecord]]:
        r = rng(seed)
        program = random_program(r, BIG)
        out = []
        for _ in range(50):
            program, record = mutate(program, r, BIG)
            out.append((program, record))
        return out

    assert lineage(7) == lineage(7)
    assert lineage(7) != lineage(8)


def test_untouched_instructions_are_shared_with_the_parent() -> None:
    r = rng(9)
    parent = random_program(r, BIG)
    for _ in range(400):
        child, record = mutate(parent, r, BIG)
        if record.type == "randomize_algorithm":
            continue
        for comp in COMPONENTS:
            if comp is not record.component:
                assert child.component(comp) is parent.component(comp)
        if record.type in ("alter_param", "randomize_instruction") and child is not parent:
            assert record.component is not None and record.position is not None
            old = parent.component(record.component)
            new = child.component(record.component)
            for pos, (a, b) in enumerate(zip(old, new, strict=True)):
                if pos != record.position:
                    assert a is b


# ---- what each type does ------------------------------------------------------------------------


def test_identity_returns_the_parent() -> None:
    parent = random_program(rng(), BIG)
    child, record = mutate(parent, rng(), with_types(BIG, "identity"))
    assert child is parent and record.type == "identity"


def test_mutate_prob_is_respected() -> None:
    parent = random_program(rng(), BIG)
    n = 4000
    for prob, expected in ((0.0, 1.0), (0.3, 0.7), (1.0, 0.0)):
        cfg = with_types(BIG, "randomize_instruction", mutate_prob=prob)
        r = rng(10)
        records = [mutate(parent, r, cfg)[1] for _ in range(n)]
        untouched = sum(rec.type == "none" for rec in records) / n
        assert abs(untouched - expected) < 0.03
        assert all(
            mutate(parent, r, cfg)[0] is parent for _ in range(20)
        ) == (prob == 0.0)


def test_mutation_types_and_components_are_drawn_uniformly_with_weights() -> None:
    cfg = with_types(BIG, "identity", "identity", "remove_instruction", ops=((1,), (), (2, 3)))
    parent = random_program(rng(), cfg)
    r = rng(11)
    records = [mutate(parent, r, cfg)[1] for _ in range(6000)]
    types = Counter(rec.type for rec in records)
    assert abs(types["identity"] / 6000 - 2 / 3) < 0.03
    comps = Counter(rec.component for rec in records if rec.type == "remove_instruction")
    assert set(comps) == {COMPONENTS[0], COMPONENTS[2]}
    assert abs(comps[COMPONENTS[0]] / sum(comps.values()) - 0.5) < 0.05


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
    cfg = with_types(BIG, "alter_param", ops=((0,), (), ()))
    parent = Program((_instr_of(name),))
    r = rng(12)
    n = 6000
    records = [mutate(parent, r, cfg)[1] for _ in range(n)]
    assert all(rec.component is COMPONENTS[0] and rec.position == 0 for rec in records)
    counts = Counter(rec.field for rec in records)
    assert set(counts) == set(odds)
    for field, p in odds.items():  # 5 standard errors at most
        assert abs(counts[field] / n - p) < 5 * math.sqrt(p * (1 - p) / n), field


def test_alter_param_changes_only_the_recorded_field() -> None:
    r = rng(13)
    cfg = with_types(BIG, "alter_param")
    parent = random_program(r, cfg)
    for _ in range(500):
        child, rec = mutate(parent, r, cfg)
        if rec.field is None:
            assert child is parent
            continue
        assert rec.component is not None and rec.position is not None
        old = parent.component(rec.component)[rec.position]
        new = child.component(rec.component)[rec.position]
        assert new.code == old.code
        if rec.field == "out":
            assert (old.out, new.out) == (rec.old, rec.new)
            assert (old.ins, old.literals) == (new.ins, new.literals)
        elif rec.field.startswith("in"):
            k = int(rec.field[2:])
            assert (old.ins[k], new.ins[k]) == (rec.old, rec.new)
            assert old.out == new.out and old.literals == new.literals
        else:
            k = [lit.name for lit in old.op.literals].index(rec.field)
            assert (old.literals[k], new.literals[k]) == (rec.old, rec.new)
            assert (old.out, old.ins) == (new.out, new.ins)
        parent = child


def test_alter_param_leaves_pass_alone() -> None:
    parent = Program((PASS,), (PASS,), (PASS,))
    child, rec = mutate(parent, rng(), with_types(BIG, "alter_param"))
    assert child is parent and rec.type == "alter_param" and rec.field is None


def _literal_mutations(code: int, literals: tuple[float | int, ...], field: str,
                       n: int = 4000) -> list[tuple[float | int, float | int]]:
    op = OPS[code]
    instr = Instr(code, Cell(op.out, 2 if op.out is Kind.SCALAR else 1), (), literals)  # type: ignore[arg-type]
    parent = Program((instr,))
    cfg = with_types(BIG, "alter_param")
    r = rng(14)
    pairs = []
    for _ in range(n):
        _, rec = mutate(parent, r, cfg)
        if rec.field == field:
            assert isinstance(rec.old, float | int) and isinstance(rec.new, float | int)
            pairs.append((rec.old, rec.new))
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
    assert all(new == 0.0 for _, new in _literal_mutations(const, (0.0,), "c", 500))
    set_mat = next(op.code for op in OPS if op.out is Kind.MATRIX and op.form.value == "const")
    news = [new for _, new in _literal_mutations(set_mat, (0, 0, 1.0), "j", 3000)]
    assert set(news) == set(range(BIG.dim))
    assert all(type(x) is int for x in news)


def test_insert_never_exceeds_max_and_positions_are_uniform() -> None:
    cfg = with_types(BIG, "insert_instruction", ops=((1,), (), ()), min_sizes=(0, 0, 0),
                     max_sizes=(3, 3, 3))
    r = rng(15)
    full = Program((PASS,) * 3)
    assert all(mutate(full, r, cfg)[0] is full for _ in range(50))
    over = Program((PASS,) * 5)  # a hand-written program may start above the max
    assert mutate(over, r, cfg)[0] is over
    parent = Program((PASS, PASS))
    gaps: Counter[int] = Counter()
    for _ in range(3000):
        child, rec = mutate(parent, r, cfg)
        assert len(child.setup) == 3 and rec.position is not None
        assert isinstance(rec.new, Instr) and rec.new.code == 1
        assert child.setup[rec.position] is rec.new
        gaps[rec.position] += 1
    assert set(gaps) == {0, 1, 2} and all(abs(c / 3000 - 1 / 3) < 0.04 for c in gaps.values())


def test_remove_never_goes_below_min() -> None:
    cfg = with_types(BIG, "remove_instruction", ops=((1,), (), ()), min_sizes=(2, 0, 0))
    r = rng(16)
    parent = random_program(r, with_types(cfg, "identity", init_sizes=(5, 0, 0)))
    sizes = []
    for _ in range(10):
        child, rec = mutate(parent, r, cfg)
        sizes.append(len(child.setup))
        if child is not parent:
            assert rec.old is parent.setup[rec.position]  # type: ignore[index]
        parent = child
    assert sizes == [4, 3, 2, 2, 2, 2, 2, 2, 2, 2]


def test_trade_keeps_size_and_randomize_component_keeps_size() -> None:
    r = rng(17)
    for kind in ("trade_instruction", "randomize_component", "randomize_algorithm"):
        cfg = with_types(BIG, kind)
        parent = random_program(r, cfg)
        for _ in range(200):
            child, _ = mutate(parent, r, cfg)
            assert child.sizes() == parent.sizes()
            parent = child


def test_trade_inserts_then_removes_from_the_enlarged_list() -> None:
    cfg = with_types(BIG, "trade_instruction", ops=((1,), (), ()))
    r = rng(18)
    parent = random_program(r, with_types(cfg, "identity", ops=((2,), (), ())))
    n = 3000
    removed: Counter[int] = Counter()
    own = 0
    for _ in range(n):
        child, rec = mutate(parent, r, cfg)
        assert rec.position is not None and rec.removed is not None
        enlarged = list(parent.setup)
        enlarged.insert(rec.position, rec.new)  # type: ignore[arg-type]
        assert enlarged[rec.removed] is rec.old
        del enlarged[rec.removed]
        assert list(child.setup) == enlarged
        assert (child is parent) == (rec.removed == rec.position)
        removed[rec.removed] += 1
        own += rec.removed == rec.position
    size = len(parent.setup)
    assert set(removed) == set(range(size + 1))  # any of the enlarged list, uniformly
    assert all(abs(c / n - 1 / (size + 1)) < 0.04 for c in removed.values())
    assert abs(own / n - 1 / (size + 1)) < 0.04


def test_randomize_component_replaces_one_component_with_allowed_ops() -> None:
    cfg = with_types(BIG, "randomize_component", ops=((1,), (3,), ()))
    parent = empty_program(cfg)
    r = rng(19)
    for _ in range(50):
        child, rec = mutate(parent, r, cfg)
        assert rec.component in (COMPONENTS[0], COMPONENTS[1])
        assert child.learn is parent.learn
        assert {i.code for i in child.component(rec.component)} == {
            {COMPONENTS[0]: 1, COMPONENTS[1]: 3}[rec.component]
        }


def test_randomize_algorithm_is_a_fresh_random_program_of_the_same_sizes() -> None:
    cfg = with_types(BIG, "randomize_algorithm", ops=((1,), (), (2,)))
    parent = empty_program(cfg)
    child, rec = mutate(parent, rng(20), cfg)
    assert rec.component is None
    assert child.predict is parent.predict
    assert {i.code for i in child.setup} == {1} and {i.code for i in child.learn} == {2}


def test_empty_components_are_left_alone_by_instruction_level_types() -> None:
    parent = Program((), (), ())
    for kind in ("alter_param", "randomize_instruction", "randomize_component",
                 "remove_instruction"):
        child, rec = mutate(parent, rng(), with_types(BIG, kind))
        assert child is parent and rec.type == kind and rec.position is None


def test_nothing_mutable_leaves_the_program_alone() -> None:
    cfg = with_types(BIG, "alter_param", "insert_instruction", ops=((), (), ()))
    parent = random_program(rng(), cfg)
    for _ in range(20):
        assert mutate(parent, rng(), cfg)[0] is parent


def test_cells_of_a_memory_the_config_lacks_are_kept_not_redrawn() -> None:
    cfg = with_types(BIG, "alter_param", matrices=0, ops=((1,), (), ()))
    transpose = next(op.code for op in OPS if op.func == "transpose")
    instr = Instr(transpose, Cell(Kind.MATRIX, 5), (Cell(Kind.MATRIX, 7),))
    parent = Program((instr,))
    r = rng(21)
    assert all(mutate(parent, r, cfg)[0] is parent for _ in range(30))


def test_log_scale_handles_non_finite_literals() -> None:
    const = next(op.code for op in OPS if op.out is Kind.SCALAR and op.form.value == "const")
    for value in (math.inf, -math.inf):
        for _, new in _literal_mutations(const, (value,), "c", 200):
            assert math.isinf(new)
