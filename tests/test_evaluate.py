"""evaluate(): hand-written programs through the interpreter, settings, backends, Numba subset."""

from __future__ import annotations

import math

import numpy as np
import pytest

from azdsl.errors import CheckError, ConfigError
from azdsl.language.program import Cell, Instr, Program
from azdsl.running import interp
from azdsl.running import tasks as tasks_mod
from azdsl.running.evaluate import (
    PackedTasks,
    Settings,
    combine_fitness,
    evaluate,
    get_backend,
    memory_sizes,
    run_lockstep,
    sigmoid,
)
from azdsl.running.interp import Machine
from azdsl.running.tasks import Task, TaskSpec, linear_task, make_tasks


def ins(code: int, out: str | None, *cells: str, lits: tuple[float, ...] = ()) -> Instr:
    return Instr(code, Cell.parse(out) if out else None, tuple(Cell.parse(c) for c in cells),
                 lits)


def linear_sgd(rate: float, setup: tuple[Instr, ...] = ()) -> Program:
    """The original's LINEAR algorithm: weights in v1, SGD on squared error."""
    return Program(
        setup=(ins(56, "s2", lits=(rate,)), *setup),
        predict=(ins(27, "s1", "v1", "v0"),),
        learn=(ins(2, "s3", "s0", "s1"), ins(3, "s3", "s2", "s3"), ins(18, "v2", "s3", "v0"),
               ins(23, "v1", "v1", "v2")),
    )


LINEAR_TASKS = make_tasks(TaskSpec("linear", dim=4, num_tasks=3, num_train=100, num_valid=100))


def test_linear_sgd_learns_linear_tasks() -> None:
    result = evaluate(linear_sgd(0.1), LINEAR_TASKS)
    assert result.fitness > 0.99
    assert len(result.task_fitness) == 3
    assert result.train_steps == 300
    assert result.fitness == combine_fitness(result.task_fitness)


def test_weights_starting_at_the_truth_give_exactly_one() -> None:
    task = linear_task(4, 50, 50, param_seed=7, data_seed=8)
    truth = tasks_mod.generator(7, tasks_mod._PARAM_SALT["linear"]).standard_normal(4)
    setup = tuple(ins(57, "v1", lits=(k, float(w))) for k, w in enumerate(truth))
    assert evaluate(linear_sgd(0.1, setup), task).fitness == 1.0


def test_a_nan_program_scores_zero_without_crashing() -> None:
    # log(-1) = nan in Predict: the first training step stops.
    program = Program(setup=(ins(56, "s2", lits=(-1.0,)),), predict=(ins(14, "s1", "s2"),))
    result = evaluate(program, LINEAR_TASKS)
    assert result.fitness == 0.0 and result.train_steps == 0


def test_an_exploding_learning_rate_scores_zero() -> None:
    assert evaluate(linear_sgd(10.0), LINEAR_TASKS).fitness == 0.0


def test_more_epochs_never_score_lower() -> None:
    task = linear_task(4, 20, 50, param_seed=1, data_seed=2)
    one = evaluate(linear_sgd(0.05), task).fitness
    three = evaluate(linear_sgd(0.05), task, epochs=3)
    assert three.fitness > one and three.train_steps == 60


def test_classification_learn_sees_the_sigmoid_in_s1() -> None:
    # Predict: s1 = s2 + s3 with s2 = 0.3 (s3 = 0); Learn copies s1 into s4.
    program = Program(setup=(ins(56, "s2", lits=(0.3,)),), predict=(ins(1, "s1", "s2", "s3"),),
                      learn=(ins(1, "s4", "s1", "s3"),))
    x = np.zeros((4, 2))
    y = np.array([1.0, 0.0, 1.0, 1.0])
    task = Task("t", "classification", 2, x, y, x, y)
    machine = Machine.fresh(program, memory_sizes(program, None), 2, stream=0)
    fitness = np.zeros(1)
    run_lockstep(interp.lockstep_runner, interp.access, [machine],
                 *PackedTasks.pack([task], Settings()).arrays(), 100.0, np.zeros((1, 0)),
                 np.zeros((1, 3), np.int64), fitness)
    assert machine.memory.s[4] == sigmoid(0.3)
    assert fitness[0] == 0.75  # logit 0.3 > 0 predicts class 1 everywhere


def test_settings_limit_examples_and_record_errors() -> None:
    result = evaluate(linear_sgd(0.1), LINEAR_TASKS, num_train=10, num_valid=5, record=30)
    assert result.train_steps == 30
    outcome = result.outcomes[0]
    assert (outcome.train_recorded, outcome.valid_recorded) == (10, 5)
    assert outcome.errors.shape == (15,)
    assert outcome.errors[0] == abs(LINEAR_TASKS[0].y_train[0])  # weights start at zero


def test_median_is_the_upper_median() -> None:
    assert combine_fitness([0.1, 0.9, 0.5, 0.7], "median") == 0.7
    assert combine_fitness([0.2, 0.4], "mean") == pytest.approx(0.3)
    with pytest.raises(ConfigError):
        combine_fitness([0.5], "mode")
    with pytest.raises(ConfigError):
        combine_fitness([])


def test_memory_sizes_take_the_larger_of_needs_and_configuration() -> None:
    program = linear_sgd(0.1)
    assert memory_sizes(program, None) == (4, 3, 0)
    assert memory_sizes(program, (2, 5, 1)) == (4, 5, 1)
    small = evaluate(program, LINEAR_TASKS[0]).fitness
    assert evaluate(program, LINEAR_TASKS[0], memory=(20, 20, 20)).fitness == small


def test_program_must_fit_the_feature_size() -> None:
    program = Program(setup=(ins(57, "v1", lits=(7, 1.0)),))
    with pytest.raises(CheckError):
        evaluate(program, LINEAR_TASKS)


def test_unknown_backend_and_empty_task_list_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown backend"):
        get_backend("abacus")
    with pytest.raises(ConfigError):
        evaluate(linear_sgd(0.1), [])


def test_interp_sessions_run_one_step_at_a_time() -> None:
    backend = get_backend("interp")
    assert backend.open_session is not None
    run, ctx = backend.open_session(linear_sgd(0.1), 4, Settings(), 0)
    assert run(ctx, 0, 0, np.zeros(4), 0.0) == 0.0
    assert ctx.memory.s[2] == 0.1


def test_run_lockstep_compiles_with_numba_and_agrees_bit_for_bit() -> None:
    numba = pytest.importorskip("numba")

    def linear_runner(ctx, component, execution, behind, tasks, n):  # type: ignore[no-untyped-def]
        s, v = ctx
        for q in range(n):
            t = tasks[q]
            if component == 0:
                s[t, 2] = 0.1
            elif component == 1:
                acc = 0.0
                for k in range(v.shape[2]):
                    acc += v[t, 1, k] * v[t, 0, k]
                s[t, 1] = acc
            else:
                s[t, 3] = s[t, 2] * (s[t, 0] - s[t, 1])
                for k in range(v.shape[2]):
                    v[t, 1, k] = v[t, 1, k] + s[t, 3] * v[t, 0, k]

    def linear_access(ctx, action, t, xs, row, y):  # type: ignore[no-untyped-def]
        s, v = ctx
        if action == 4:
            return s[t, 1]
        if action == 3:
            s[t, 1] = y
            return y
        v[t, 0, :] = xs[t, row]
        s[t, 0] = y
        return 0.0

    jitted = numba.njit(cache=False, error_model="numpy")(run_lockstep)
    jitted_runner = numba.njit(error_model="numpy")(linear_runner)
    jitted_access = numba.njit(error_model="numpy")(linear_access)
    chosen = [LINEAR_TASKS[0], LINEAR_TASKS[1]]
    for classification in (False, True):
        group = [Task(t.name, "classification" if classification else "regression", 4,
                      t.x_train, t.y_train, t.x_valid, t.y_valid, 2, t.perm) for t in chosen]
        packed = PackedTasks.pack(group, Settings())
        results = []
        for run, functions in ((jitted, (jitted_runner, jitted_access)),
                               (run_lockstep, (linear_runner, linear_access))):
            errors = np.zeros((2, 250))
            counts = np.zeros((2, 3), dtype=np.int64)
            fitness = np.zeros(2)
            ctx = (np.zeros((2, 4)), np.zeros((2, 3, 4)))
            run(*functions, ctx, *packed.arrays(), 100.0, errors, counts, fitness)
            results.append((fitness.tobytes(), errors.tobytes(), counts.tolist(),
                            ctx[1].tobytes()))
        assert results[0] == results[1]
        # And the interpreter computes the same thing as this hand-written backend.
        assert np.frombuffer(results[0][0]).tolist() == list(
            evaluate(linear_sgd(0.1), group).task_fitness)


def test_sigmoid_matches_its_formula() -> None:
    for z in (-5.0, -0.5, 0.0, 2.0):
        assert sigmoid(z) == 1.0 / (1.0 + math.exp(-z))
