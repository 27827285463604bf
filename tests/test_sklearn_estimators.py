"""The scikit-learn estimators: EvolvedRegressor, EvolvedClassifier, and Algorithm's API."""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.base import clone, is_classifier, is_regressor
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator
from support import sgd

import azdsl
from azdsl.errors import ConfigError
from azdsl.estimators import PRESETS, EvolvedClassifier, EvolvedRegressor, preset
from azdsl.language.parse import parse
from azdsl.language.program import Program
from azdsl.running.estimator import Algorithm

TINY: dict[str, Any] = {"max_individuals": 300, "population_size": 20, "random_state": 0}


def regression(n: int = 120, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)) * [1.0, 10.0, 0.1] + [0.0, 50.0, -3.0]
    return x, x @ np.array([2.0, -0.3, 8.0]) + 40.0


def blobs(n: int = 150, classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    centres = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0], [6.0, 6.0]])[:classes]
    return centres[y] + rng.normal(size=(n, 2)), y


@pytest.mark.parametrize("estimator", [EvolvedRegressor(**TINY), EvolvedClassifier(**TINY)],
                         ids=["regressor", "classifier"])
def test_check_estimator(estimator: Any) -> None:
    # Nothing is expected to fail; the tags say poor_score (a small search need not reach
    # the score thresholds of check_regressors_train and check_classifiers_train).
    results = check_estimator(estimator, on_fail=None)
    failed = [(r["check_name"], str(r["exception"])) for r in results
              if r["status"] == "failed"]
    assert failed == []
    skipped = {r["check_name"] for r in results if r["status"] == "skipped"}
    assert skipped <= {"check_array_api_input"}  # needs SCIPY_ARRAY_API, not us


def test_the_regressor_learns_a_linear_function_at_any_scale() -> None:
    x, y = regression()
    model = EvolvedRegressor(max_individuals=1500, population_size=50, random_state=1,
                             epochs=3).fit(x, y)
    x_new, y_new = regression(60, seed=1)
    assert model.score(x_new, y_new) > 0.9
    assert isinstance(model.program_, Program) and 0.0 <= model.fitness_ <= 1.0
    assert model.hall_of_fame_ and model.hall_of_fame_[0].fitness >= model.fitness_ - 1.0
    assert model.search_result_.program is not None and model.n_features_in_ == 3


def test_labels_are_classes_not_numbers() -> None:
    x, y = blobs(classes=2)
    labels = np.where(y == 1, 2, 1)  # {1, 2}: a classification, never a regression
    model = EvolvedClassifier(**TINY).fit(x, labels)
    assert list(model.classes_) == [1, 2] and set(model.predict(x)) <= {1, 2}
    assert model.score(x, labels) > 0.9
    proba = model.predict_proba(x[:5])
    assert proba.shape == (5, 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert np.array_equal(model.predict(x[:5]), model.classes_[proba.argmax(axis=1)])
    words = np.array(["cat", "dog"])[y]
    assert set(EvolvedClassifier(**TINY).fit(x, words).predict(x)) <= {"cat", "dog"}
    with pytest.raises(ValueError, match="Unknown label type"):
        EvolvedClassifier(**TINY).fit(x, x[:, 0])


def test_multiclass_is_one_vs_rest_with_one_program() -> None:
    x, y = blobs(classes=3)
    model = EvolvedClassifier(max_individuals=1000, population_size=40, random_state=2,
                              epochs=3).fit(x, y)
    assert len(model.algorithms_) == 3
    assert all(a.program_ == model.program_ for a in model.algorithms_)
    assert model.decision_function(x).shape == (len(x), 3)
    proba = model.predict_proba(x)
    assert proba.shape == (len(x), 3) and np.allclose(proba.sum(axis=1), 1.0)
    assert model.score(x, y) > 0.8
    assert len(model.search_result_.experiments) == 1


def test_pipeline_clone_cross_validation_and_grid_search() -> None:
    x, y = blobs(classes=2)
    pipe = make_pipeline(StandardScaler(), EvolvedClassifier(**TINY))
    assert cross_val_score(pipe, x, y, cv=3).mean() > 0.8
    copy = clone(EvolvedRegressor(search_space="neural", **TINY))
    assert copy.get_params()["search_space"] == "neural" and not hasattr(copy, "program_")
    grid = GridSearchCV(EvolvedRegressor(**TINY), {"epochs": [1, 3]}, cv=2)
    xr, yr = regression(80)
    grid.fit(xr, yr)
    assert grid.best_params_["epochs"] in (1, 3) and np.isfinite(grid.best_score_)
    assert is_classifier(EvolvedClassifier()) and is_regressor(EvolvedRegressor())


def test_same_random_state_same_model_and_pickles() -> None:
    x, y = regression(60)
    a = EvolvedRegressor(**TINY).fit(x, y)
    b = EvolvedRegressor(**TINY).fit(x, y)
    assert a.program_ == b.program_ and np.array_equal(a.predict(x), b.predict(x))
    c = pickle.loads(pickle.dumps(a))
    assert np.array_equal(c.predict(x), a.predict(x))


@pytest.mark.parametrize("space", sorted(PRESETS))
def test_every_preset_and_a_config_of_ones_own(space: str) -> None:
    x, y = blobs(60, classes=2)
    model = EvolvedClassifier(search_space=space, max_individuals=100, population_size=10,
                              random_state=0).fit(x, y)
    ops = {i.code for part in model.program_.components for i in part}
    allowed = set().union(*(c.ops for c in preset(space).components))
    assert ops <= allowed


def test_a_config_of_ones_own_and_bad_parameters(tmp_path: Any) -> None:
    x, y = regression(40)
    text = """[search_tasks]\nkind = "linear"\n[memory]\nscalars = 4\nvectors = 3
matrices = 1\n[learn]\nops = ["s = s * s", "v = s * v", "v = v + v", "s = s - s"]
size = 4\n[budget]\nmax_individuals = 10\n"""
    model = EvolvedRegressor(config=text, **TINY).fit(x, y)
    assert not model.program_.setup and not model.program_.predict  # only Learn evolves
    with pytest.raises(ConfigError, match="search_space must be one of"):
        EvolvedRegressor(search_space="quadratic").fit(x, y)
    with pytest.raises(ConfigError, match="n_jobs"):
        EvolvedRegressor(n_jobs=0, **TINY).fit(x, y)
    with pytest.raises(ConfigError, match="select_fraction"):
        EvolvedRegressor(select_fraction=1.5, **TINY).fit(x, y)


def test_n_jobs_runs_islands() -> None:
    x, y = regression(60)
    model = EvolvedRegressor(n_jobs=2, **TINY).fit(x, y)
    assert model.search_result_.individuals >= 300 and model.hall_of_fame_


def test_verbose_prints_progress(capsys: pytest.CaptureFixture[str]) -> None:
    x, y = regression(40)
    EvolvedRegressor(verbose=1, **TINY).fit(x, y)
    assert "individuals" in capsys.readouterr().err


# ---- Algorithm ----------------------------------------------------------------------------

ACCUMULATING = parse(sgd(0.1).replace("  s1 = dot(v0, v1)\n",
                                      "  v2 = v2 + v0\n  s1 = dot(v2, v1)\n"))


def test_algorithm_follows_the_conventions() -> None:
    x, y = regression(50)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    y = (y - y.mean()) / y.std()
    model = Algorithm(sgd(0.1), epochs=2)
    copy = clone(model)
    assert copy.get_params() == model.get_params() and copy is not model
    assert model.set_params(epochs=3) is model and model.epochs == 3
    with pytest.raises(ValueError, match="Invalid parameter"):
        model.set_params(epoch=3)
    assert cross_val_score(Algorithm(sgd(0.1), epochs=3, kind="regression"), x, y,
                           cv=3).mean() > 0.9
    pipe = make_pipeline(StandardScaler(), Algorithm(sgd(0.1), kind="regression")).fit(x, y)
    assert pipe.score(x, y) > 0.9
    grid = GridSearchCV(Algorithm(sgd(0.1), kind="regression"), {"epochs": [1, 2]},
                        cv=2).fit(x, y)
    assert grid.best_params_["epochs"] in (1, 2)
    assert is_regressor(Algorithm(sgd(0.1), kind="regression"))
    assert is_classifier(Algorithm(sgd(0.1), kind="classification"))
    assert "epochs=3" in repr(model)
    model.set_params(program_or_path=sgd(0.5))
    assert model.program == parse(sgd(0.5))


def test_predictions_are_stateless_by_default_and_stateful_on_request() -> None:
    x, y = regression(30)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    stateless = Algorithm(ACCUMULATING).fit(x, y / 100)
    first = stateless.predict(x[:5])
    assert np.array_equal(stateless.predict(x[:5]), first)  # Predict's writes are undone
    assert np.array_equal(stateless.predict(x[2:5]), first[2:])  # a row alone, the same
    stateful = Algorithm(ACCUMULATING, predict_mode="stateful").fit(x, y / 100)
    assert np.array_equal(stateful.predict(x[:1]), first[:1])
    assert not np.array_equal(stateful.predict(x[:1]), first[:1])  # v2 kept growing
    copy = pickle.loads(pickle.dumps(stateful))  # the memory travels, as it is now
    assert np.array_equal(copy.predict(x[:3]), stateful.predict(x[:3]))
    with pytest.raises(ConfigError, match="predict_mode"):
        Algorithm(ACCUMULATING, predict_mode="sometimes").fit(x, y)


def test_the_readme_examples_work(monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert azdsl.EvolvedClassifier is EvolvedClassifier
    root = Path(__file__).resolve().parent.parent
    section = (root / "README.md").read_text().split("## From Python")[1].split("\n## ")[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    assert len(blocks) == 2 and len(blocks[0].strip().splitlines()) == 5
    monkeypatch.chdir(root)
    namespace: dict[str, Any] = {}
    exec(blocks[0], namespace)  # the README's own example
    printed = capsys.readouterr().out.splitlines()
    assert f"This prints `{printed[0]}`" in section  # the score the README states
    assert parse("\n".join(printed[1:])) == namespace["model"].program_
    exec(blocks[1], namespace)
    assert len(namespace["more"].experiments) == len(namespace["result"].experiments) + 1
    assert capsys.readouterr().out
