"""evaluate.run_lockstep, the train/validate/fitness protocol, driven by a scripted backend."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from azdsl.running.evaluate import (
    COMPONENT_LEARN,
    COMPONENT_PREDICT,
    COMPONENT_SETUP,
    EXP_MAX,
    READ_PREDICTION,
    STORE_PREDICTION,
    run_lockstep,
    sigmoid,
)

SETUP, PREDICT, LEARN, STORE = COMPONENT_SETUP, COMPONENT_PREDICT, COMPONENT_LEARN, STORE_PREDICTION


@dataclass
class Script:
    """A fake task: Predict sets s1 = predict(execution, x); every step is logged as
    (component, execution, features fed, label fed), the store of a prediction as
    (STORE, 0, features fed, value)."""

    predict: Callable[[int, Any], float]
    calls: list[tuple[int, int, tuple[float, ...], float]] = field(default_factory=list)
    fed: tuple[tuple[float, ...], float] = ((0.0,), 0.0)
    s1: float = 0.0


def scripted_runner(ctx: list[Script], component: int, count: int, behind: Any, tasks: Any,
                    n: int) -> None:
    for q in range(n):
        script = ctx[tasks[q]]
        execution = int(count - behind[tasks[q]])
        if component == SETUP:
            script.calls.append((SETUP, execution, (0.0,), 0.0))
            continue
        script.calls.append((component, execution, *script.fed))
        if component == PREDICT:
            script.s1 = script.predict(execution, script.fed[0])


def scripted_access(ctx: list[Script], action: int, t: int, xs: Any, row: int,
                    y: float) -> float:
    script = ctx[t]
    if action == READ_PREDICTION:
        return script.s1
    if action == STORE:
        script.calls.append((STORE, 0, script.fed[0], float(y)))
        script.s1 = y
        return y
    script.fed = (tuple(float(v) for v in xs[t, row]), float(y))
    return 0.0


X_TRAIN = np.array([[1.0], [2.0], [3.0]])
Y_TRAIN = np.array([10.0, 20.0, 30.0])
X_VALID = np.array([[4.0], [5.0]])
Y_VALID = np.array([40.0, 50.0])
PERM = np.array([2, 0, 1], dtype=np.int64)


def run_many(scripts: list[Script], limits: list[tuple[int, int, int, bool]],
             y_train: Any = Y_TRAIN, y_valid: Any = Y_VALID, record: int = 0,
             max_abs_error: float = 100.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """run_lockstep on one task per script, each with (n_train, n_valid, epochs,
    classification), all on the same examples."""
    n = len(scripts)
    errors = np.zeros((n, record))
    counts = np.zeros((n, 3), dtype=np.int64)
    fitness = np.zeros(n)
    column = list(zip(*limits, strict=True))
    run_lockstep(scripted_runner, scripted_access, scripts, np.stack([X_TRAIN] * n),
                 np.stack([np.asarray(y_train, dtype=np.float64)] * n),
                 np.stack([X_VALID] * n), np.stack([np.asarray(y_valid, dtype=np.float64)] * n),
                 np.stack([PERM] * n), np.array(column[0], dtype=np.int64),
                 np.array(column[1], dtype=np.int64), np.array(column[2], dtype=np.int64),
                 np.array(column[3], dtype=np.bool_), max_abs_error, errors, counts, fitness)
    return fitness, errors, counts


def run(script: Script, *, n_train: int = 3, n_valid: int = 2, epochs: int = 1,
        classification: bool = False, y_train: Any = Y_TRAIN, y_valid: Any = Y_VALID,
        record: int = 0, max_abs_error: float = 100.0) -> tuple[float, np.ndarray, np.ndarray]:
    fitness, errors, counts = run_many([script], [(n_train, n_valid, epochs, classification)],
                                       y_train, y_valid, record, max_abs_error)
    return float(fitness[0]), errors[0], counts[0]


def rmse_fitness(errors: list[float]) -> float:
    total = 0.0
    for e in errors:
        total += e * e
    return 1.0 - (2.0 / math.pi) * math.atan(math.sqrt(total / len(errors)))


def test_call_sequence_order_and_execution_counts() -> None:
    script = Script(lambda execution, x: 10.0 * x[0])  # a perfect predictor
    fitness, _, counts = run(script, epochs=2)
    assert fitness == 1.0
    train = [(PREDICT, 0, (1.0,), 0.0), (LEARN, 0, (1.0,), 10.0),
             (PREDICT, 1, (2.0,), 0.0), (LEARN, 1, (2.0,), 20.0),
             (PREDICT, 2, (3.0,), 0.0), (LEARN, 2, (3.0,), 30.0)]
    valid = [(PREDICT, 3, (4.0,), 0.0), (PREDICT, 4, (5.0,), 0.0)]
    # Epoch 2 trains in the fixed permutation order (2, 0, 1); validation is in stored order.
    train2 = [(PREDICT, 5, (3.0,), 0.0), (LEARN, 3, (3.0,), 30.0),
              (PREDICT, 6, (1.0,), 0.0), (LEARN, 4, (1.0,), 10.0),
              (PREDICT, 7, (2.0,), 0.0), (LEARN, 5, (2.0,), 20.0)]
    valid2 = [(PREDICT, 8, (4.0,), 0.0), (PREDICT, 9, (5.0,), 0.0)]
    assert script.calls == [(SETUP, 0, (0.0,), 0.0), *train, *valid, *train2, *valid2]
    assert counts.tolist() == [0, 0, 6]


def test_regression_fitness_is_the_atan_of_the_rmse() -> None:
    fitness, _, _ = run(Script(lambda execution, x: 0.0 if x[0] < 4 else 39.0))
    assert fitness == rmse_fitness([1.0, 11.0])  # validation errors 40 - 39 and 50 - 39
    fitness, _, _ = run(Script(lambda execution, x: 10.0 * x[0] + 1.0))
    assert fitness == rmse_fitness([-1.0, -1.0])
    assert fitness == 0.5  # RMSE 1 -> 1 - (2/pi) atan(1)


def test_training_stops_on_nan_in_the_first_epoch() -> None:
    script = Script(lambda execution, x: math.nan if execution == 1 else 10.0 * x[0])
    fitness, _, counts = run(script, epochs=3)
    assert fitness == 0.0
    assert script.calls[-1][:2] == (PREDICT, 1)  # no Learn for that step, no validation
    assert counts[2] == 1


def test_training_stops_above_max_abs_error_but_not_at_it() -> None:
    at_limit = Script(lambda execution, x: 10.0 * x[0] + (100.0 if execution == 0 else 0.0))
    assert run(at_limit)[0] == 1.0
    above = Script(lambda execution, x: 10.0 * x[0] + (100.5 if execution == 0 else 0.0))
    assert run(above)[0] == 0.0
    assert run(Script(lambda execution, x: math.inf))[0] == 0.0
    assert run(above, max_abs_error=200.0)[0] == 1.0


def test_a_later_epoch_that_diverges_keeps_the_best_earlier_epoch() -> None:
    # Epoch 1 perfect (fitness 1), epoch 2's first training Predict (execution 5) is nan.
    script = Script(lambda execution, x: math.nan if execution == 5 else 10.0 * x[0])
    fitness, _, counts = run(script, epochs=3)
    assert fitness == 1.0
    assert counts[2] == 3
    assert all(call[1] <= 5 for call in script.calls if call[0] == PREDICT)


def test_task_fitness_is_the_best_epoch() -> None:
    # Validation Predicts are executions 3-4 (epoch 1), 8-9 (epoch 2), 13-14 (epoch 3).
    offsets = {3: 2.0, 4: 2.0, 8: 0.5, 9: 0.5, 13: 3.0, 14: 3.0}
    script = Script(lambda execution, x: 10.0 * x[0] + offsets.get(execution, 0.0))
    assert run(script, epochs=3)[0] == rmse_fitness([0.5, 0.5])


def test_a_bad_validation_error_zeroes_only_that_epoch() -> None:
    # Predict executions: epoch 1 train 0-2, valid 3 (nan: stop); epoch 2 train 4-6, valid
    # 7, 8 (too large: stop); epoch 3 train 9-11, valid 12-13.
    offsets = {3: math.nan, 8: 200.0, 12: 1.0, 13: 1.0}
    script = Script(lambda execution, x: 10.0 * x[0] + offsets.get(execution, 0.0))
    assert run(script, epochs=1)[0] == 0.0
    assert run(Script(script.predict), epochs=2)[0] == 0.0
    assert run(Script(script.predict), epochs=3)[0] == 0.5
    # Validation stops at the bad example: the second validation example of epoch 1 never runs.
    script.calls.clear()
    run(script, epochs=2)
    seen = [c[2][0] for c in script.calls if c[0] == PREDICT]
    assert seen == [1.0, 2.0, 3.0, 4.0, 3.0, 1.0, 2.0, 4.0, 5.0]


def test_classification_writes_the_sigmoid_back_during_training_only() -> None:
    logits = {0: 2.0, 1: -1.0, 2: 0.0, 3: 0.3, 4: -0.3}
    script = Script(lambda execution, x: logits[execution])
    fitness, _, _ = run(script, classification=True, y_train=[1.0, 0.0, 1.0],
                        y_valid=[1.0, 1.0])
    stores = [call for call in script.calls if call[0] == STORE]
    assert [s[3] for s in stores] == [sigmoid(2.0), sigmoid(-1.0), 0.5]
    assert [s[2] for s in stores] == [(1.0,), (2.0,), (3.0,)]
    assert len(script.calls) == 1 + 3 * 3 + 2  # no store during validation
    assert fitness == 0.5  # logit 0.3 -> class 1 (right), -0.3 -> class 0 (wrong)


def test_classification_nan_logit_is_class_zero_in_validation_and_stops_training() -> None:
    nan_in_valid = Script(lambda execution, x: math.nan if execution >= 3 else 1.0)
    assert run(nan_in_valid, classification=True, y_train=[1.0, 1.0, 1.0],
               y_valid=[0.0, 1.0])[0] == 0.5
    nan_in_train = Script(lambda execution, x: math.nan)
    assert run(nan_in_train, classification=True, y_train=[1.0, 1.0, 1.0],
               y_valid=[0.0, 1.0])[0] == 0.0


def test_sigmoid_is_exact_at_the_overflow_edge() -> None:
    assert sigmoid(-EXP_MAX) == 1.0 / (1.0 + math.exp(EXP_MAX))
    assert sigmoid(math.nextafter(-EXP_MAX, -math.inf)) == 0.0
    assert sigmoid(-math.inf) == 0.0 and sigmoid(math.inf) == 1.0
    assert math.isnan(sigmoid(math.nan))
    with pytest.raises(OverflowError):
        math.exp(math.nextafter(EXP_MAX, math.inf))  # why the branch exists
    # run_lockstep's inlined copy agrees with `sigmoid`.
    for z in (-800.0, -EXP_MAX, -3.0, 0.0, 0.7, 40.0):
        script = Script(lambda execution, x, z=z: z)
        run(script, n_train=1, n_valid=0, classification=True, y_train=[0.0, 0.0, 0.0])
        assert [c[3] for c in script.calls if c[0] == STORE] == [sigmoid(z)]


def test_errors_and_counts_record_the_first_epoch() -> None:
    offsets = {0: 1.0, 1: -2.0, 2: 3.0, 3: -4.0, 4: 5.0}
    script = Script(lambda execution, x: 10.0 * x[0] + offsets.get(execution, 0.0))
    _, errors, counts = run(script, epochs=2, record=10)
    assert counts.tolist() == [3, 2, 6]
    assert errors[:5].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]  # |y - s1|, train then valid
    assert errors[5:].tolist() == [0.0] * 5  # epoch 2 is not recorded
    _, errors, counts = run(Script(script.predict), record=4)
    assert counts.tolist() == [3, 1, 3] and errors.tolist() == [1.0, 2.0, 3.0, 4.0]


def test_classification_records_zero_one_validation_errors() -> None:
    script = Script(lambda execution, x: 0.0 if execution < 3 else [1.0, -1.0][execution - 3])
    _, errors, counts = run(script, classification=True, y_train=[1.0, 0.0, 1.0],
                            y_valid=[1.0, 1.0], record=5)
    assert counts.tolist() == [3, 2, 3]
    assert errors.tolist() == [0.5, 0.5, 0.5, 0.0, 1.0]


def test_recording_stops_at_the_early_stop() -> None:
    script = Script(lambda execution, x: math.nan if execution == 1 else 10.0 * x[0])
    _, errors, counts = run(script, record=5)
    assert counts.tolist() == [2, 0, 1]
    assert errors[0] == 0.0 and math.isnan(errors[1])


def test_no_training_examples_means_fitness_zero_and_nothing_runs() -> None:
    script = Script(lambda execution, x: 0.0)
    assert run(script, n_train=0)[0] == 0.0
    assert run(script, epochs=0)[0] == 0.0
    assert script.calls == []


def test_no_validation_examples_gives_fitness_zero() -> None:
    assert run(Script(lambda execution, x: 10.0 * x[0]), n_valid=0)[0] == 0.0


def test_tasks_in_lockstep_compute_what_each_computes_alone() -> None:
    """Tasks sharing their limits run together, others in their own group; some stop in
    training, some in validation: each task's steps, errors, counts and fitness are those of
    the task run alone."""
    predictors: list[Callable[[int, Any], float]] = [
        lambda execution, x: 10.0 * x[0],  # perfect
        lambda execution, x: math.nan if execution == 1 else 10.0 * x[0],  # stops training
        lambda execution, x: 10.0 * x[0] + (500.0 if execution == 3 else 0.0),  # validation
        lambda execution, x: 10.0 * x[0] + 0.5 * execution,  # drifts
    ]
    limits = [(3, 2, 2, False), (3, 2, 2, False), (2, 2, 3, False), (3, 2, 2, False),
              (3, 2, 2, True), (3, 1, 2, False)]
    chosen = [predictors[i % len(predictors)] for i in range(len(limits))]
    together = [Script(p) for p in chosen]
    fitness, errors, counts = run_many(together, limits, record=7)
    for k, (predict, limit) in enumerate(zip(chosen, limits, strict=True)):
        alone = Script(predict)
        f, e, c = run_many([alone], [limit], record=7)
        assert alone.calls == together[k].calls
        assert (f[0], e[0].tobytes(), c[0].tolist()) == (fitness[k], errors[k].tobytes(),
                                                          counts[k].tolist())
