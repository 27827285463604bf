"""Running components: the runner protocol of the interpreter and random-draw keys."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from azdsl.language.program import Cell, Instr, Program
from azdsl.running import rng
from azdsl.running.evaluate import evaluate
from azdsl.running.interp import (
    LEARN,
    PREDICT,
    SETUP,
    STORE_PREDICTION,
    Machine,
    Memory,
    run_component,
)
from azdsl.running.tasks import linear_task


def ins(code: int, out: str | None, *cells: str, lits: tuple[float, ...] = ()) -> Instr:
    return Instr(code, Cell.parse(out) if out else None, tuple(Cell.parse(c) for c in cells),
                 lits)


# Setup draws v1 and m0; Predict adds fresh noise s3 and reads all of them, so all are live.
RANDOM_PROGRAM = Program(
    setup=(ins(63, "v1", lits=(0.0, 1.0)), ins(61, "m0", lits=(-1.0, 1.0))),
    predict=(
        ins(59, "s3", lits=(0.0, 1.0)),
        ins(31, "v2", "m0", "v0"),
        ins(27, "s1", "v1", "v2"),
        ins(1, "s1", "s1", "s3"),
    ),
)


def test_runner_writes_features_and_label_and_returns_s1() -> None:
    program = Program(predict=(ins(27, "s1", "v0", "v0"),), learn=(ins(1, "s2", "s0", "s1"),))
    machine = Machine.fresh(program, (3, 1, 0), 2, stream=0)
    from azdsl.running.interp import runner

    assert runner(machine, SETUP, 0, np.zeros(2), 0.0) == 0.0
    assert runner(machine, PREDICT, 0, np.array([1.0, 2.0]), 0.0) == 5.0
    assert machine.memory.v[0].tolist() == [1.0, 2.0] and machine.memory.s[0] == 0.0
    assert runner(machine, STORE_PREDICTION, 0, np.array([1.0, 2.0]), 0.25) == 0.25
    runner(machine, LEARN, 0, np.array([3.0, 4.0]), 7.0)
    assert machine.memory.s[0] == 7.0 and machine.memory.v[0].tolist() == [3.0, 4.0]
    assert machine.memory.s[2] == 7.25  # Learn saw the stored prediction


def test_setup_draws_are_keyed_by_component_ordinal_and_execution() -> None:
    stream = rng.stream(5, 2)
    memory = Memory.zeros((4, 3, 1), 3)
    run_component(RANDOM_PROGRAM, memory, SETUP, 0, stream)
    key_v1 = rng.draw_key(stream, 0, 0, 0)
    key_m0 = rng.draw_key(stream, 0, 1, 0)
    assert memory.v[1].tolist() == [rng.gauss01(key_v1, k) for k in range(3)]
    assert memory.m[0].ravel().tolist() == [-1.0 + 2.0 * rng.uniform01(key_m0, k)
                                            for k in range(9)]


def test_dead_random_instructions_do_not_shift_live_draws() -> None:
    dead = ins(62, "s2", lits=(0.0, 1.0))  # s2 is never read
    padded = Program(setup=(dead, *RANDOM_PROGRAM.setup), predict=RANDOM_PROGRAM.predict)
    a, b = Memory.zeros((4, 3, 1), 3), Memory.zeros((4, 3, 1), 3)
    run_component(RANDOM_PROGRAM, a, SETUP, 0, 11)
    run_component(padded, b, SETUP, 0, 11)
    assert np.array_equal(a.v, b.v) and np.array_equal(a.m, b.m)


def test_random_draws_differ_across_executions_tasks_and_seeds() -> None:
    def draw(seed: int, task: int, execution: int) -> float:
        memory = Memory.zeros((4, 3, 1), 3)
        run_component(RANDOM_PROGRAM, memory, PREDICT, execution, rng.stream(seed, task))
        return float(memory.s[3])

    base = draw(0, 0, 0)
    assert draw(0, 0, 0) == base
    assert len({base, draw(0, 0, 1), draw(0, 1, 0), draw(1, 0, 0)}) == 4


def test_random_program_fitness_is_reproducible_per_seed() -> None:
    tasks = [linear_task(3, 20, 20, 1, 2, index=0), linear_task(3, 20, 20, 1, 2, index=1)]
    first = evaluate(RANDOM_PROGRAM, tasks, seed=3)
    assert evaluate(RANDOM_PROGRAM, tasks, seed=3) == first
    # Same data, different index: a different stream, so different draws and fitness.
    assert first.task_fitness[0] != first.task_fitness[1]
    assert evaluate(RANDOM_PROGRAM, tasks, seed=4).task_fitness != first.task_fitness


def test_the_interpreter_and_protocol_never_import_numba() -> None:
    code = ("import sys, azdsl.running.interp, azdsl.running.evaluate, azdsl.running.tasks\n"
            "import azdsl.running.estimator\n"
            "assert 'numba' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
