"""Simplification: dead code goes, names become canonical, what the program computes stays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import mutation_config, sgd

from azdsl.cli import main
from azdsl.language.liveness import live_mask
from azdsl.language.ops import Kind
from azdsl.language.parse import parse
from azdsl.language.printer import unparse
from azdsl.language.program import FEATURES, LABEL, PASS, PREDICTION, Cell, Instr, Program
from azdsl.language.simplify import canonical_key, canonical_names, simplify
from azdsl.running.evaluate import Evaluation, evaluate
from azdsl.running.tasks import CLASSIFICATION, Task, linear_task
from azdsl.search.mutate import MutationConfig, mutate, random_program

# Memory on the small side so random programs wire their cells together often.
CFG = mutation_config(scalars=5, vectors=4, matrices=2, init_sizes=(4, 5, 6),
                      min_sizes=(0, 0, 0), max_sizes=(10, 10, 10))
# Few cells: random programs wire more of their instructions into the prediction.
DENSE = mutation_config(scalars=3, vectors=2, matrices=1, init_sizes=(4, 6, 6))
# A space where programs often learn something (fitness away from 0 and 1).
USEFUL = mutation_config(
    scalars=5,
    vectors=4,
    matrices=1,
    ops=((56, 59, 63, 62), (27, 1, 18, 31, 56), (2, 3, 18, 23, 27, 56, 62)),
    init_sizes=(4, 3, 7),
)

LINEAR_WITH_NOISE = """\
def Setup():
  s7 = 0.01
  s5 = 3.0
  m1 = gaussian(0.0, 1.0)
def Predict():
  pass
  s1 = dot(v0, v4)
  s8 = s1 * s5
def Learn():
  s3 = s0 - s1
  s6 = sin(s3)
  s9 = s3 * s7
  v2 = s9 * v0
  v4 = v4 + v2
  s1 = s6 + s6
"""

LINEAR_CANONICAL = sgd(step="s4")


def rename(program: Program, mapping: dict[Cell, Cell]) -> Program:
    def cell(c: Cell) -> Cell:
        return mapping.get(c, c)

    setup, predict, learn = (
        tuple(
            Instr(i.code, cell(i.out) if i.out else None, tuple(cell(c) for c in i.ins),
                  i.literals)
            for i in instrs
        )
        for instrs in program.components
    )
    return Program(setup, predict, learn)


def shuffled_names(program: Program, rng: np.random.Generator) -> dict[Cell, Cell]:
    """A random bijection of the non-reserved cells onto fresh, larger indices."""
    mapping = {}
    for kind in Kind:
        cells = sorted(
            {c for i in program.instructions() for c in i.cells() if c.kind is kind}
            - {LABEL, PREDICTION, FEATURES},
            key=lambda c: c.index,
        )
        targets = rng.permutation(len(cells)) + 3 + len(cells)
        mapping.update({c: Cell(kind, int(t)) for c, t in zip(cells, targets, strict=True)})
    return mapping


def same_evaluation(a: Evaluation, b: Evaluation) -> bool:
    """Equal fitness, per-task fitness, train steps and recorded errors, bit for bit."""

    def bits(values: object) -> bytes:
        return np.asarray(values, dtype=np.float64).tobytes()

    return (
        bits(a.fitness) == bits(b.fitness)
        and bits(a.task_fitness) == bits(b.task_fitness)
        and a.train_steps == b.train_steps
        and all(
            bits(x.errors) == bits(y.errors)
            for x, y in zip(a.outcomes, b.outcomes, strict=True)
        )
    )


def small_tasks() -> list[Task]:
    linear = linear_task(3, 8, 6, param_seed=1, data_seed=2, index=0)
    r = np.random.default_rng(3)
    x = r.standard_normal((14, 3))
    y = (x[:, 0] - x[:, 2] > 0).astype(np.float64)
    classify = Task("toy", CLASSIFICATION, 3, x[:8], y[:8], x[8:], y[8:], index=1)
    return [linear, classify]


TASKS = small_tasks()


# ---- what simplify does ---------------------------------------------------------------------


def test_dead_code_goes_and_names_become_canonical() -> None:
    simplified = simplify(parse(LINEAR_WITH_NOISE))
    assert simplified == parse(LINEAR_CANONICAL)
    assert unparse(simplified) == unparse(parse(LINEAR_CANONICAL))


def test_simplified_programs_have_only_live_instructions() -> None:
    r = np.random.default_rng(0)
    for _ in range(100):
        simplified = simplify(random_program(r, CFG))
        assert PASS not in simplified.instructions()
        assert all(all(flags) for flags in live_mask(simplified))


def test_partial_writes_keep_the_rest_of_their_cell_alive() -> None:
    program = parse(
        "def Setup():\n  v3 = gaussian(0.0, 1.0)\n  v3[0] = 2.0\n"
        "def Predict():\n  s1 = mean(v3)\n"
        "def Learn():\n"
    )
    assert simplify(program).sizes() == (2, 1, 0)


def test_renaming_is_a_bijection_that_keeps_reserved_cells() -> None:
    program = parse(
        "def Predict():\n  v5 = v0 + v9\n  m4 = outer(v5, v9)\n  v9 = m4 @ v5\n"
        "  s4 = dot(v5, v9)\n  s1 = s4 + s0\n"
    )
    names = canonical_names(program.instructions())
    assert names[FEATURES] == FEATURES and names[LABEL] == LABEL
    assert names[PREDICTION] == PREDICTION
    assert len(set(names.values())) == len(names)
    assert unparse(simplify(program)) == unparse(
        parse(
            "def Predict():\n  v1 = v0 + v2\n  m0 = outer(v1, v2)\n  v2 = m0 @ v1\n"
            "  s2 = dot(v1, v2)\n  s1 = s2 + s0\n"
        )
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), steps=st.integers(0, 6))
def test_idempotent_and_invariant_under_renaming(seed: int, steps: int) -> None:
    r = np.random.default_rng(seed)
    program = random_program(r, CFG)
    for _ in range(steps):
        program = mutate(program, r, CFG)
    simplified = simplify(program)
    assert simplify(simplified) == simplified
    renamed = rename(program, shuffled_names(program, r))
    assert unparse(simplify(renamed)) == unparse(simplified)
    assert canonical_key(renamed) == canonical_key(program) == canonical_key(simplified)
    assert parse(unparse(simplified)) == simplified


def test_canonical_key_tells_different_programs_apart() -> None:
    r = np.random.default_rng(1)
    by_key: dict[object, Program] = {}
    for _ in range(300):
        simplified = simplify(random_program(r, USEFUL))
        key = canonical_key(simplified)
        assert by_key.setdefault(key, simplified) == simplified
    assert len(by_key) > 250
    a = parse("def Setup():\n  s2 = 0.0\ndef Predict():\n  s1 = s2 + s2\n")
    b = parse("def Setup():\n  s2 = -0.0\ndef Predict():\n  s1 = s2 + s2\n")
    assert canonical_key(a) != canonical_key(b)


# ---- simplify never changes what a program computes ---------------------------------------------


def _programs(cfg: MutationConfig, seed: int, count: int) -> list[Program]:
    r = np.random.default_rng(seed)
    programs = []
    for _ in range(count):
        program = random_program(r, cfg)
        for _ in range(int(r.integers(0, 4))):
            program = mutate(program, r, cfg)
        programs.append(program)
    return programs


@pytest.mark.parametrize(("cfg", "seed"), [(CFG, 10), (DENSE, 11), (USEFUL, 12)])
def test_simplify_keeps_fitness_exactly(cfg: MutationConfig, seed: int) -> None:
    programs = [*_programs(cfg, seed, 120), parse(LINEAR_WITH_NOISE)]
    nontrivial = live_random = 0
    for i, program in enumerate(programs):
        simplified = simplify(program)
        before = evaluate(program, TASKS, seed=i, record=20)
        after = evaluate(simplified, TASKS, seed=i, record=20)
        assert same_evaluation(before, after), unparse(program)
        nontrivial += any(0.0 < f < 1.0 for f in before.task_fitness)
        live_random += any(instr.op.is_random for instr in simplified.instructions())
    # The comparison saw programs that compute something, random ones among them.
    assert nontrivial >= 10 and live_random >= 3


def test_simplify_keeps_fitness_with_random_ops_in_dead_and_live_code() -> None:
    program = parse(
        "def Setup():\n  v1 = gaussian(0.0, 1.0)\n  s3 = uniform(-1.0, 1.0)\n"
        "  v2 = uniform(-1.0, 1.0)\n  s2 = uniform(0.0, 0.1)\n"
        "def Predict():\n  s4 = gaussian(0.0, 1.0)\n  v3 = gaussian(0.0, 0.1)\n"
        "  v3 = v3 + v1\n  s1 = dot(v0, v3)\n"
        "def Learn():\n  s4 = uniform(0.0, 1.0)\n  s3 = s0 - s1\n  s3 = s3 * s2\n"
        "  v2 = gaussian(0.0, 1.0)\n  v2 = s3 * v0\n  v1 = v1 + v2\n"
    )
    simplified = simplify(program)
    assert simplified.sizes() == (2, 3, 4)
    for seed in range(3):
        assert same_evaluation(
            evaluate(program, TASKS, seed=seed, record=20),
            evaluate(simplified, TASKS, seed=seed, record=20),
        )


# ---- the command ------------------------------------------------------------------------------


def test_cli_prints_the_simplified_program(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "linear.az"
    path.write_text(LINEAR_WITH_NOISE)
    assert main(["simplify", str(path), "--dim", "4"]) == 0
    assert capsys.readouterr().out == unparse(parse(LINEAR_CANONICAL))


def test_cli_reports_errors_with_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "index.az"
    path.write_text("def Setup():\n  v1[5] = 1.0\ndef Predict():\n  s1 = mean(v1)\n")
    assert main(["simplify", str(path), "--dim", "4"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "index.az:2:" in captured.err
    assert main(["simplify", str(tmp_path / "missing.az")]) == 1
    assert main(["simplify"]) == 2
