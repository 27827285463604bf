"""The scikit-learn-style Algorithm: fit on arrays, predict, classification, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support import sgd

import azdsl
from azdsl.errors import AzdslError, CheckError, ConfigError
from azdsl.language.program import Cell, Component, Instr, Program
from azdsl.running.estimator import Algorithm
from azdsl.running.evaluate import evaluate, sigmoid
from azdsl.running.tasks import Task

LINEAR_TEXT = sgd(0.1)

def ins(code: int, out: str, *cells: str, lits: tuple[float, ...] = ()) -> Instr:
    return Instr(code, Cell.parse(out), tuple(Cell.parse(c) for c in cells), lits)


LINEAR = Program(
    setup=(ins(56, "s2", lits=(0.1,)),),
    predict=(ins(27, "s1", "v0", "v1"),),
    learn=(ins(2, "s3", "s0", "s1"), ins(3, "s3", "s3", "s2"), ins(18, "v2", "s3", "v0"),
           ins(23, "v1", "v1", "v2")),
)


def data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    return x, x @ np.array([0.5, -1.0, 2.0])


def test_fit_predict_regression() -> None:
    x, y = data(300)
    model = Algorithm(LINEAR, epochs=2).fit(x, y)
    assert model is not None and model.kind_ == "regression"
    assert model.n_train_steps_ == 600 and not model.diverged_
    x_new, y_new = data(20, seed=1)
    assert np.abs(model.predict(x_new) - y_new).max() < 1e-3


def test_fit_trains_like_the_protocol() -> None:
    # Fitting on the training split and predicting the validation split gives the errors
    # evaluate's validation sees (one epoch, same order, same memory).
    x, y = data(50)
    task = Task("t", "regression", 3, x[:40], y[:40], x[40:], y[40:])
    model = Algorithm(LINEAR).fit(x[:40], y[:40])
    errors = y[40:] - model.predict(x[40:])
    result = evaluate(LINEAR, task, record=50)
    assert np.array_equal(np.abs(errors), result.outcomes[0].errors[40:])


def test_classification_labels_logits_and_probabilities() -> None:
    x, score = data(400)
    labels = (score > 0).astype(float)
    model = Algorithm(LINEAR, epochs=3).fit(x, labels)
    assert model.kind_ == "classification"
    predicted = model.predict(x)
    assert predicted.dtype == np.int64 and set(np.unique(predicted)) <= {0, 1}
    assert (predicted == labels).mean() > 0.9
    logits = model.decision_function(x[:5])
    assert np.array_equal(model.predict(x[:5]), (logits > 0).astype(np.int64))
    proba = model.predict_proba(x[:2])
    assert proba.shape == (2, 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert proba[0, 1] == sigmoid(float(model.decision_function(x[:1])[0]))


def test_kind_can_be_forced() -> None:
    x, score = data(50)
    model = Algorithm(LINEAR, kind="regression").fit(x, (score > 0).astype(float))
    assert model.kind_ == "regression" and model.predict(x[:3]).dtype == np.float64


def test_divergence_warns_and_stops_training() -> None:
    x, y = data(100)
    model = Algorithm(LINEAR.replace_component(Component.SETUP, (ins(56, "s2", lits=(5.0,)),)))
    with pytest.warns(RuntimeWarning, match="stopped early"):
        model.fit(x, y)
    assert model.diverged_ and model.n_train_steps_ < 100


def test_errors_are_user_errors() -> None:
    model = Algorithm(LINEAR)
    with pytest.raises(ConfigError, match="call fit"):
        model.predict(np.zeros((1, 3)))
    with pytest.raises(ConfigError, match="shape"):
        model.fit(np.zeros(3), np.zeros(3))
    model.fit(*data(10))
    with pytest.raises(CheckError):
        model.predict(np.zeros((2, 4)))
    with pytest.raises(CheckError):
        Algorithm(Program(setup=(Instr(57, Cell.parse("v1"), (), (5, 1.0)),))).fit(*data(10))
    with pytest.raises(ConfigError, match="unknown backend"):
        Algorithm(LINEAR, backend="abacus").fit(*data(10))


def test_random_programs_are_reproducible_per_seed() -> None:
    program = Program(setup=(ins(63, "v1", lits=(0.0, 1.0)),), predict=(
        ins(27, "s1", "v1", "v0"),))
    x, y = data(5)
    a = Algorithm(program, seed=1).fit(x, y).predict(x)
    b = Algorithm(program, seed=1).fit(x, y).predict(x)
    c = Algorithm(program, seed=2).fit(x, y).predict(x)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_lazy_exports() -> None:
    assert azdsl.Algorithm is Algorithm and azdsl.evaluate is evaluate
    with pytest.raises(AttributeError):
        _ = azdsl.no_such_name  # type: ignore[attr-defined]


def test_program_from_text_or_file(tmp_path: Path) -> None:
    pytest.importorskip("azdsl.language.parse")
    path = tmp_path / "linear.az"
    path.write_text(LINEAR_TEXT)
    x, y = data(30)
    expected = Algorithm(LINEAR).fit(x, y).predict(x)
    assert np.array_equal(Algorithm(path).fit(x, y).predict(x), expected)
    assert np.array_equal(Algorithm(str(path)).fit(x, y).predict(x), expected)
    assert np.array_equal(Algorithm(LINEAR_TEXT).fit(x, y).predict(x), expected)
    with pytest.raises(AzdslError, match="cannot read"):  # the path named, as `azdsl check`
        Algorithm(tmp_path / "absent.az")
