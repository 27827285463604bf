"""The backends against the reference interpreter, bit for bit (NaN-aware).

Generated programs over all 65 ops (outputs alias an input about a quarter of the time,
literals and memory hold NaN, inf, -0.0 and subnormals) run on the same memory in the
interpreter, the plain-Python generated code ("py"), the VM and (on a few programs that cover
every op, to keep Numba compiles few) the jitted generated code; memory must be identical
after each component, and fitness and recorded errors identical on small tasks.
"""

from __future__ import annotations

import json
import os
import random
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from azdsl.language.liveness import random_ordinals
from azdsl.language.ops import OPS, OPS_BY_CODE, Kind, LitType
from azdsl.language.program import Cell, Instr, Program
from azdsl.running import codegen, interp, rng, vm
from azdsl.running.evaluate import Settings, evaluate
from azdsl.running.tasks import Task, linear_task

F = 4
SIZES = (5, 3, 2)  # scalars, vectors, matrices the generated programs may use
_COUNT = dict(zip((Kind.SCALAR, Kind.VECTOR, Kind.MATRIX), SIZES, strict=True))
SPECIAL = (0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, -2.5e-310, 1.0, -1.0, 1e308, -1e308)


# ---- generated programs ---------------------------------------------------------------------

float_literals = st.one_of(
    st.sampled_from(SPECIAL), st.floats(-3.0, 3.0), st.floats(allow_nan=True, allow_infinity=True)
)


@st.composite
def instructions(draw: st.DrawFn, codes: tuple[int, ...] = tuple(op.code for op in OPS)) -> Instr:
    op = OPS_BY_CODE[draw(st.sampled_from(codes))]
    ins = tuple(Cell(kind, draw(st.integers(0, _COUNT[kind] - 1))) for kind in op.ins)
    out = None
    if op.out is not None:
        same_kind = [cell for cell in ins if cell.kind is op.out]
        if same_kind and draw(st.integers(0, 3)) == 0:
            out = draw(st.sampled_from(same_kind))  # aliasing: the output is an input
        else:
            out = Cell(op.out, draw(st.integers(0, _COUNT[op.out] - 1)))
    literals = tuple(
        draw(st.integers(0, F - 1)) if lit.type is LitType.INDEX else draw(float_literals)
        for lit in op.literals
    )
    return Instr(op.code, out, ins, literals)


def programs(max_size: int = 10) -> st.SearchStrategy[Program]:
    component = st.lists(instructions(), max_size=max_size).map(tuple)
    return st.builds(Program, component, component, component)


def every_op_program(seed: int) -> Program:
    """Every op once (shuffled over the three components), half of them aliased."""
    r = random.Random(seed)
    instrs = []
    for op in OPS:
        ins = tuple(Cell(kind, r.randrange(_COUNT[kind])) for kind in op.ins)
        out = None
        if op.out is not None:
            same_kind = [cell for cell in ins if cell.kind is op.out]
            out = (r.choice(same_kind) if same_kind and r.random() < 0.5
                   else Cell(op.out, r.randrange(_COUNT[op.out])))
        lits = tuple(r.randrange(F) if lit.type is LitType.INDEX else r.choice(
            [*SPECIAL, r.uniform(-2, 2), r.uniform(-2, 2)]) for lit in op.literals)
        instrs.append(Instr(op.code, out, ins, lits))
    r.shuffle(instrs)
    a, b = sorted(r.sample(range(1, len(instrs)), 2))
    return Program(tuple(instrs[:a]), tuple(instrs[a:b]), tuple(instrs[b:]))


def random_memory(seed: int) -> interp.Memory:
    """Memory with ordinary values, huge and tiny ones, zeros of both signs, NaN and inf."""
    g = np.random.default_rng(seed)
    ns, nv, nm = SIZES
    total = ns + nv * F + nm * F * F
    values = g.normal(size=total) * 10.0 ** g.integers(-3, 4, size=total)
    pick = g.random(total)
    values = np.where(pick < 0.12, g.choice(np.array(SPECIAL), size=total), values)
    return interp.Memory(values[:ns].copy(), values[ns:ns + nv * F].reshape(nv, F).copy(),
                         values[ns + nv * F:].reshape(nm, F, F).copy())


# ---- comparing -------------------------------------------------------------------------------


def bit_patterns(*arrays: np.ndarray) -> np.ndarray:
    """Concatenated float64 bit patterns with every NaN mapped to one value."""
    flat = np.concatenate([np.ravel(a).astype(np.float64) for a in arrays])
    out = flat.view(np.uint64).copy()
    out[np.isnan(flat)] = np.uint64(0x7FF8000000000000)
    return out


def assert_same_memory(expected: interp.Memory, got: tuple[np.ndarray, ...], where: str) -> None:
    a = bit_patterns(expected.s, expected.v, expected.m)
    b = bit_patterns(*got)
    if not np.array_equal(a, b):
        bad = int(np.flatnonzero(a != b)[0])
        values = np.concatenate([np.ravel(x) for x in (expected.s, expected.v, expected.m)])
        others = np.concatenate([np.ravel(x) for x in got])
        raise AssertionError(f"{where}: flat cell {bad}: {values[bad]!r} != {others[bad]!r}")


# (component, execution) steps each memory test runs: Setup, then Predict and Learn twice.
STEPS = ((0, 0), (1, 0), (2, 0), (1, 1), (2, 1))


def interp_trace(program: Program, memory: interp.Memory, stream: int) -> list[interp.Memory]:
    ordinals = random_ordinals(program)
    trace = []
    for component, execution in STEPS:
        interp.run_component(program, memory, component, execution, stream, ordinals)
        trace.append(memory.copy())
    return trace


def check_generated(program: Program, memory: interp.Memory, stream: int, jit: bool) -> None:
    expected = interp_trace(program, memory.copy(), stream)
    module = codegen.compile_program(program, F, jit=jit)
    mem = memory.copy()
    tv, tm = np.zeros(F), np.zeros((F, F))
    key = np.uint64(stream) if jit else stream
    with np.errstate(all="ignore"):
        for (component, execution), want in zip(STEPS, expected, strict=True):
            fn = getattr(module, codegen.COMPONENT_NAMES[component])
            fn(mem.s, mem.v, mem.m, tv, tm, key, execution)
            assert_same_memory(want, (mem.s, mem.v, mem.m),
                               f"{'jit' if jit else 'py'} after component {component}")


def check_vm(program: Program, memory: interp.Memory, stream: int) -> None:
    expected = interp_trace(program, memory.copy(), stream)
    low = vm.lower(program, SIZES, F)
    flat = np.concatenate([memory.s, memory.v.ravel(), memory.m.ravel()])
    for (component, execution), want in zip(STEPS, expected, strict=True):
        vm.run_component(low, flat, component, execution, stream, F)
        assert_same_memory(want, vm.memory_views(flat, SIZES, F),
                           f"vm after component {component}")


# ---- memory after each component ------------------------------------------------------------

_HYPOTHESIS = settings(max_examples=60, deadline=None,
                       suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@_HYPOTHESIS
@given(programs(), st.integers(0, 2**32), st.integers(0, 2**64 - 1))
def test_py_and_vm_memory_match_interp(program: Program, memory_seed: int, stream: int) -> None:
    memory = random_memory(memory_seed)
    check_generated(program, memory, stream, jit=False)
    check_vm(program, memory, stream)


@pytest.mark.parametrize("seed", [1, 2])
def test_every_op_memory_matches_in_every_backend(seed: int) -> None:
    program = every_op_program(seed)
    assert {i.code for i in program.instructions()} == {op.code for op in OPS}
    for memory_seed in range(3):
        memory = random_memory(memory_seed + 10 * seed)
        stream = rng.stream(seed, memory_seed)
        check_generated(program, memory, stream, jit=False)
        check_vm(program, memory, stream)
        check_generated(program, memory, stream, jit=True)


def test_each_op_alone_in_the_vm_with_extreme_memory() -> None:
    for op in OPS:
        for seed in range(4):
            program = every_op_program(seed)
            instr = next(i for i in program.instructions() if i.code == op.code)
            check_vm(Program((instr,), (instr,), (instr,)), random_memory(seed), seed)


# ---- fitness on small tasks ------------------------------------------------------------------


def small_tasks() -> list[Task]:
    """Regression (2 epochs, so the permutation is used) and classification, F = 4."""
    g = np.random.default_rng(5)
    regression = linear_task(F, 12, 8, 3, 4, index=0, epochs=2)
    x = g.normal(size=(20, F))
    y = (x @ np.array([1.0, -2.0, 0.5, 0.0]) > 0).astype(np.float64)
    classification = Task("cls", "classification", F, x[:12], y[:12], x[12:], y[12:],
                          epochs=2, perm=g.permutation(12), index=1)
    return [regression, classification]


SGD = Program(
    setup=(Instr(56, Cell(Kind.SCALAR, 2), (), (0.01,)),
           Instr(63, Cell(Kind.VECTOR, 1), (), (0.0, 0.1))),
    predict=(Instr(27, Cell(Kind.SCALAR, 1), (Cell(Kind.VECTOR, 0), Cell(Kind.VECTOR, 1))),),
    learn=(Instr(2, Cell(Kind.SCALAR, 3), (Cell(Kind.SCALAR, 0), Cell(Kind.SCALAR, 1))),
           Instr(3, Cell(Kind.SCALAR, 3), (Cell(Kind.SCALAR, 3), Cell(Kind.SCALAR, 2))),
           Instr(18, Cell(Kind.VECTOR, 2), (Cell(Kind.SCALAR, 3), Cell(Kind.VECTOR, 0))),
           Instr(23, Cell(Kind.VECTOR, 1), (Cell(Kind.VECTOR, 1), Cell(Kind.VECTOR, 2)))),
)


def outcome_fingerprint(program: Program, backend: str, seed: int) -> list[object]:
    result = evaluate(program, small_tasks(), backend=backend, seed=seed, record=30,
                      memory=SIZES)
    return [struct.pack("<d", result.fitness).hex(), result.train_steps,
            *((struct.pack("<d", o.fitness).hex(), o.train_steps, o.train_recorded,
               o.valid_recorded, bit_patterns(o.errors).tolist()) for o in result.outcomes)]


@_HYPOTHESIS
@given(programs(max_size=6), st.integers(0, 2**32))
def test_fitness_and_errors_match_interp(program: Program, seed: int) -> None:
    expected = outcome_fingerprint(program, "interp", seed)
    assert outcome_fingerprint(program, "py", seed) == expected
    assert outcome_fingerprint(program, "vm", seed) == expected


def lockstep_tasks() -> list[Task]:
    """Four regression tasks with the same limits (one lockstep group; their data differ,
    so random programs stop on some and not others) and the classification task."""
    group = [linear_task(F, 10, 6, 20 + k, 30 + k, index=k, epochs=2) for k in range(4)]
    return [*group, small_tasks()[1]]


@_HYPOTHESIS
@given(programs(max_size=6), st.integers(0, 2**32))
def test_tasks_in_lockstep_match_tasks_alone(program: Program, seed: int) -> None:
    tasks = lockstep_tasks()

    def fingerprint(backend: str, chosen: list[Task]) -> list[object]:
        result = evaluate(program, chosen, backend=backend, seed=seed, record=20, memory=SIZES)
        return [(struct.pack("<d", o.fitness).hex(), o.train_steps, o.train_recorded,
                 o.valid_recorded, bit_patterns(o.errors).tolist()) for o in result.outcomes]

    alone = [fingerprint("interp", [task])[0] for task in tasks]
    assert fingerprint("vm", tasks) == alone
    assert fingerprint("interp", tasks) == alone


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(programs(max_size=6), st.integers(0, 2**32), st.sampled_from([8, 16]))
def test_fitness_matches_interp_beyond_f4(program: Program, seed: int, dim: int) -> None:
    """The VM reads matrix inputs in place above F = 4 and copies them at and below it."""
    tasks = [linear_task(dim, 8, 5, 40 + k, 50 + k, index=k, epochs=2) for k in range(3)]

    def fingerprint(backend: str) -> list[object]:
        result = evaluate(program, tasks, backend=backend, seed=seed, record=10, memory=SIZES)
        return [(struct.pack("<d", o.fitness).hex(), o.train_steps,
                 bit_patterns(o.errors).tolist()) for o in result.outcomes]

    assert fingerprint("vm") == fingerprint("interp")


@pytest.mark.parametrize("program", [SGD, every_op_program(3)], ids=["sgd", "every-op"])
def test_jit_fitness_matches_interp(program: Program) -> None:
    expected = outcome_fingerprint(program, "interp", 11)
    assert outcome_fingerprint(program, "jit", 11) == expected
    assert outcome_fingerprint(program, "vm", 11) == expected


def test_sgd_learns_the_same_in_every_backend() -> None:
    fitness = {b: evaluate(SGD, small_tasks()[:1], backend=b, seed=2).fitness
               for b in ("interp", "py", "jit", "vm")}
    assert len(set(fitness.values())) == 1
    assert fitness["vm"] > 0.1  # it trains, so the comparison is not between zeros


def test_batch_of_programs_equals_one_by_one() -> None:
    tasks = small_tasks()
    batch = [SGD, every_op_program(4), Program(), SGD]
    packed = vm.PackedTasks.pack(tasks, Settings(record=5))
    together = vm.evaluate_programs(batch, packed, Settings(record=5), seeds=[1, 2, 3, 4])
    for p, (program, seed) in enumerate(zip(batch, [1, 2, 3, 4], strict=True)):
        alone = vm.evaluate_programs([program], packed, Settings(record=5), seeds=[seed])
        assert bit_patterns(together.fitness[p]).tolist() == bit_patterns(alone.fitness[0]).tolist()
        assert bit_patterns(together.errors[p]).tolist() == bit_patterns(alone.errors[0]).tolist()
        assert together.counts[p].tolist() == alone.counts[0].tolist()
    # Different seeds change random draws: SGD with seeds 1 and 4 starts from other weights.
    assert together.fitness[0].tolist() != together.fitness[3].tolist()


def test_same_seed_same_fitness_in_a_subprocess(compiled_cache: Path) -> None:
    expected = {b: outcome_fingerprint(SGD, b, 9) for b in ("vm", "jit")}
    script = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from test_backends_differential import SGD, outcome_fingerprint\n"
        "print(json.dumps({b: outcome_fingerprint(SGD, b, 9) for b in ('vm', 'jit')}))\n"
    )
    env = dict(os.environ, AZDSL_CACHE_DIR=str(compiled_cache), NUMBA_DEBUG_CACHE="1")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, check=True, timeout=300)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == json.loads(json.dumps(expected))
    # Both compiled entry points came from Numba's cache, not from a fresh compile.
    assert "evaluate_batch" in done.stdout and "evaluate_task" in done.stdout
    for entry in ("evaluate_batch", "evaluate_task"):
        saved = [line for line in done.stdout.splitlines()
                 if "saved" in line and f".{entry}-" in line]
        assert not saved, saved


DEMO_CODES = (56, 27, 2, 3, 18, 23)  # the paper's demo op set (SEMANTICS §6)


@_HYPOTHESIS
@given(st.lists(programs(max_size=6), min_size=1, max_size=4),
       st.lists(st.integers(0, 2**32), min_size=4, max_size=4))
def test_specialised_vm_matches_the_general_one(batch: list[Program], seeds: list[int]) -> None:
    """A VM inlining a few ops falls back to the general loop for the others: same bits."""
    tasks = vm.PackedTasks.pack(small_tasks(), Settings(record=20))
    lowered = [vm.lower(p, SIZES, F) for p in batch]
    general = vm.Batch(tasks, record=20, size=4).run(lowered, seeds)
    special = vm.Batch(tasks, record=20, size=4, codes=DEMO_CODES).run(lowered, seeds)
    assert bit_patterns(general.fitness, general.errors).tolist() == bit_patterns(
        special.fitness, special.errors).tolist()
    assert general.counts.tolist() == special.counts.tolist()


@given(st.lists(instructions(DEMO_CODES), min_size=1, max_size=8))
@_HYPOTHESIS
def test_specialised_vm_on_its_own_ops(learn: list[Instr]) -> None:
    program = Program(SGD.setup, SGD.predict, tuple(learn))
    expected = outcome_fingerprint(program, "interp", 3)
    tasks = vm.PackedTasks.pack(small_tasks(), Settings(record=30))
    result = vm.Batch(tasks, record=30, codes=DEMO_CODES).run(
        [vm.lower(program, SIZES, F)], [3])
    assert [struct.pack("<d", f).hex() for f in result.fitness[0]] == [
        expected[2][0], expected[3][0]]


@pytest.mark.slow
@settings(max_examples=5, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(programs(max_size=5), st.integers(0, 2**32), st.integers(0, 2**64 - 1))
def test_njit_matches_interp_on_generated_programs(program: Program, memory_seed: int,
                                                   stream: int) -> None:
    # Each example compiles a new program with Numba (seconds), hence few examples.
    check_generated(program, random_memory(memory_seed), stream, jit=True)
    expected = outcome_fingerprint(program, "interp", memory_seed)
    assert outcome_fingerprint(program, "jit", memory_seed) == expected
