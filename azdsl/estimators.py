"""scikit-learn estimators that evolve an algorithm on the user's arrays (docs/python.md).

`EvolvedRegressor.fit(X, y)` / `EvolvedClassifier.fit(X, y)` standardise X (and y for
regression), draw a search / select split from the training rows (random_state), write them
as .npz tasks in a temporary folder (the one task source every backend, island and worker
reads; azdsl.running.tasks), and run a search (azdsl.search.evolve; n_jobs > 1: that many
islands, azdsl.scale.parallel) in a search space: a preset ("linear": examples/demo.toml's
space; "neural": examples/backprop_full.toml's, hurdles and train budget off; "full": every op
of the op table in every component, in the neural space's memory) or any config's. The
search trains on a part of the search rows and validates on the rest; the best program of
each experiment is scored on the select rows (trained on all search rows). The chosen
program is then trained on all the rows (azdsl.running.estimator.Algorithm, stateless
predictions). Classification: two classes are one task (labels mapped to 0 / 1 in the order
of `classes_`); more are one-vs-rest: one task per class, one program evolved for all of
them (the search fitness is the mean accuracy over the classes' tasks), trained once per
class, and the class whose algorithm gives the largest logit is predicted.
"""

from __future__ import annotations

import functools
import itertools
import os
import sys
import tempfile
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted, check_random_state, validate_data
except ImportError as exc:  # pragma: no cover - scikit-learn is the `data` extra
    raise ImportError("azdsl's estimators need scikit-learn: pip install 'azdsl[data]'"
                      ) from exc

from azdsl.errors import ConfigError
from azdsl.language.ops import OPS
from azdsl.language.parse import parse
from azdsl.language.program import Program
from azdsl.resources import resource
from azdsl.running.estimator import Algorithm
from azdsl.running.evaluate import sigmoid
from azdsl.running.tasks import CLASSIFICATION, REGRESSION, TaskSpec
from azdsl.search.config import (
    ComponentSpace,
    Config,
    Hurdles,
    ProgramFile,
    TaskSet,
    parse_config,
    with_settings,
)
from azdsl.search.evolve import Callbacks, Result, Search, as_config
from azdsl.search.hall_of_fame import Entry

FloatArray = npt.NDArray[np.float64]

# The presets: the example config whose memory and op lists are the space, and the example
# program the population starts from (None: empty programs, over every op of the op table).
PRESETS = {"linear": ("fig4_linear_full.toml", "logistic_sgd.az"),
           "neural": ("backprop_full.toml", "neural_net.az"),
           "full": ("backprop_full.toml", None)}
# Mutations that can grow and shrink a program from where it starts.
_MUTATIONS = ("alter_param", "insert_instruction", "remove_instruction", "randomize_instruction")
_ROOM = 4  # instructions a component may grow past its start (or the config's max_size)
_FEC_PROBE = 10  # FEC's probe examples, at most (fewer when a split is smaller)


@functools.cache
def preset(name: str) -> Config:
    """The search space of a preset, as a Config (docs/python.md)."""
    if name not in PRESETS:
        raise ConfigError(f"search_space must be one of {', '.join(PRESETS)} (or give a "
                          f"config), got {name!r}")
    config_name, program_name = PRESETS[name]
    path = resource("examples", config_name)
    config = parse_config(path.read_text(encoding="utf-8"), filename=str(path),
                          base_dir=path.parent)
    # Hurdles need several search tasks and the train budget a baseline of the examples'
    # tasks: neither fits a user's one task.
    config = replace(config, hurdles=Hurdles(), train_budget=None, mutations=_MUTATIONS)
    if program_name is None:
        every = tuple(op.code for op in OPS)
        return replace(config, initial_population="empty", initial_program=None,
                       components=tuple(  # type: ignore[arg-type]
                           ComponentSpace(every, 0, 0, c.max_size)
                           for c in config.components))
    file = resource("examples", program_name)
    text = file.read_text(encoding="utf-8")
    sizes = parse(text, str(file)).sizes()
    return replace(config, initial_population="file",
                   initial_program=ProgramFile(program_name, str(file), text),
                   components=tuple(  # type: ignore[arg-type]
                       ComponentSpace(c.ops, size, 0, max(c.max_size, size + _ROOM))
                       for c, size in zip(config.components, sizes, strict=True)))


Rows = npt.NDArray[np.int64]


def _splits(n: int, select_fraction: float, tasks: int, rng: np.random.Generator
            ) -> tuple[list[tuple[Rows, Rows]], Rows, Rows]:
    """The search tasks' (train, valid) rows, the search rows and the select rows of n.
    Each search task shuffles the search rows anew and validates on one row more than the
    one before, so no program wins by the order or the count of its training rows alone.
    With fewer than 4 rows, every split is all of them."""
    order = rng.permutation(n)
    if n < 4:
        return [(order, order)] * tasks, order, order
    n_select = min(n - 2, max(1, round(n * select_fraction)))
    search, select = order[n_select:], order[:n_select]
    splits = []
    for t in range(tasks):
        shuffled = rng.permutation(search)
        n_valid = min(len(search) - 1, max(1, round(len(search) / 4)) + t)
        splits.append((shuffled[n_valid:], shuffled[:n_valid]))
    return splits, search, select


class _Evolved(BaseEstimator):  # type: ignore[misc]
    """What the regressor and the classifier share: the parameters, the search, the fit."""

    _kind = REGRESSION

    def __init__(self, search_space: str = "linear", *, config: Any = None,
                 max_individuals: int = 5000, max_time: float | None = None,
                 n_experiments: int = 1, population_size: int = 100, tournament_size: int = 10,
                 select_fraction: float = 0.25, n_search_tasks: int = 3, epochs: int = 1,
                 hall_of_fame_size: int = 10,
                 random_state: Any = None, n_jobs: int | None = None, verbose: int = 0,
                 backend: str = "vm") -> None:
        self.search_space = search_space
        self.config = config
        self.max_individuals = max_individuals
        self.max_time = max_time
        self.n_experiments = n_experiments
        self.population_size = population_size
        self.tournament_size = tournament_size
        self.select_fraction = select_fraction
        self.n_search_tasks = n_search_tasks
        self.epochs = epochs
        self.hall_of_fame_size = hall_of_fame_size
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.backend = backend

    # ---- the search -------------------------------------------------------------------------

    def _space(self) -> Config:
        return preset(self.search_space) if self.config is None else as_config(self.config)

    def _evolve(self, x: FloatArray, targets: list[FloatArray], seed: int
                ) -> tuple[Result, Config]:
        """Search on one task per target (all from rows of x), then score on the select rows;
        the result and the config it ran."""
        if not 0.0 < self.select_fraction < 1.0:
            raise ConfigError(f"select_fraction must be in (0, 1), got {self.select_fraction!r}")
        if isinstance(self.n_search_tasks, bool) or not isinstance(
                self.n_search_tasks, int) or self.n_search_tasks < 1:
            raise ConfigError(f"n_search_tasks must be a whole number >= 1, got "
                              f"{self.n_search_tasks!r}")
        splits, search_rows, select = _splits(len(x), self.select_fraction,
                                              self.n_search_tasks, np.random.default_rng(seed))
        with tempfile.TemporaryDirectory(prefix="azdsl-fit-") as folder:
            written = itertools.count()

            def specs(fit_rows: Rows, check_rows: Rows) -> tuple[TaskSpec, ...]:
                made = []
                for y in targets:
                    file = Path(folder) / f"task{next(written)}.npz"
                    np.savez(file, x_train=x[fit_rows], y_train=y[fit_rows],
                             x_valid=x[check_rows], y_valid=y[check_rows])
                    made.append(TaskSpec(kind="npz", data_path=str(file),
                                         label_kind=self._kind, epochs=self.epochs))
                return tuple(made)

            space = self._space()
            held_out = TaskSet(specs(search_rows, select), False, "select_tasks")
            searched = tuple(spec for train, valid in splits
                             for spec in specs(train, valid))
            config = replace(
                space, search_tasks=TaskSet(searched, False),
                select_tasks=held_out, final_tasks=held_out,  # the select rows stand in
                fec=replace(space.fec, num_train=min(_FEC_PROBE, *(len(t) for t, _ in splits)),
                            num_valid=min(_FEC_PROBE, *(len(v) for _, v in splits))))
            config = with_settings(
                config, max_individuals=self.max_individuals, max_train_steps=0,
                max_seconds=float(self.max_time or 0), max_experiments=self.n_experiments,
                sufficient_fitness=None, population_size=self.population_size,
                tournament_size=min(self.tournament_size, self.population_size),
                progress_every=max(self.population_size, 1000), checkpoint_every=0,
                checkpoint_seconds=0.0)
            hooks: Any = Callbacks()
            if self.verbose:
                from azdsl.progress import ProgressBar

                hooks = ProgressBar(sys.stderr)
            islands = self._islands()
            if islands == 1:
                return Search(config, seed, self.backend, hooks,
                              hall_of_fame_size=self.hall_of_fame_size).run(), config
            from azdsl.scale.parallel import Execution, IslandRun, IslandSettings

            run = IslandRun(config, seed, IslandSettings(
                islands, migrate_every=max(self.population_size, 1000)), backend=self.backend,
                hooks=hooks, execution=Execution(workers=islands))
            run.driver.hall_of_fame_size = self.hall_of_fame_size
            return run.run(), config

    def _islands(self) -> int:
        jobs = self.n_jobs
        if jobs is None:
            return 1
        if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs == 0 or jobs < -1:
            raise ConfigError(f"n_jobs must be None, -1 or a whole number >= 1, got {jobs!r}")
        return (os.cpu_count() or 1) if jobs == -1 else jobs

    def _fit_search(self, targets: list[FloatArray], x: FloatArray) -> None:
        """The search, then the chosen program trained on every row for each target."""
        seed = int(check_random_state(self.random_state).randint(0, 2**31 - 1))
        result, config = self._evolve(x, targets, seed)
        self.search_result_ = result
        self.program_: Program = result.simplified
        self.hall_of_fame_: list[Entry] = result.hall_of_fame
        self.fitness_ = result.select_fitness
        self.seed_ = seed
        self.algorithms_: list[Algorithm] = []
        self.diverged_ = False
        for target in targets:
            algorithm = Algorithm(self.program_, epochs=self.epochs, seed=seed,
                                  backend=self.backend, kind=self._kind,
                                  max_abs_error=config.max_abs_error)
            with warnings.catch_warnings():  # recorded in diverged_ instead
                warnings.simplefilter("ignore", RuntimeWarning)
                algorithm.fit(x, target)
            self.diverged_ = self.diverged_ or algorithm.diverged_
            self.algorithms_.append(algorithm)

    def _standardised(self, x: FloatArray) -> FloatArray:
        return np.ascontiguousarray((x - self.x_mean_) / self.x_scale_)

    def _scale_x(self, x: FloatArray) -> FloatArray:
        if len(x) < 2:
            raise ValueError(f"{type(self).__name__} needs at least 2 samples; got "
                             f"{len(x)} sample")
        self.x_mean_ = x.mean(axis=0)
        scale = x.std(axis=0)
        self.x_scale_ = np.where(scale > 0, scale, 1.0)
        return self._standardised(x)

    def _logits(self, X: Any) -> FloatArray:
        """Each algorithm's raw prediction s1 per row, one column per algorithm; not finite
        values (a program can produce them) become 0."""
        check_is_fitted(self)
        x = self._standardised(validate_data(self, X, reset=False, dtype=np.float64))
        out = np.stack([a.decision_function(x) for a in self.algorithms_], axis=1)
        return np.where(np.isfinite(out), out, 0.0)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        # A search of a small budget may find a weak algorithm: the checks that want a good
        # score on their data sets are told so.
        if tags.regressor_tags is not None:
            tags.regressor_tags.poor_score = True
        if tags.classifier_tags is not None:
            tags.classifier_tags.poor_score = True
        tags.non_deterministic = self.max_time is not None  # a wall-clock budget
        return tags


class EvolvedRegressor(RegressorMixin, _Evolved):  # type: ignore[misc]
    """Evolves a regression algorithm on (X, y); see the module docstring and docs/python.md.

    After fit: `program_` (the chosen program, simplified), `hall_of_fame_`, `fitness_` (its
    select fitness), `search_result_` (the whole Result), `algorithms_` (the program trained
    on all rows), `diverged_`."""

    _kind = REGRESSION

    def fit(self, X: Any, y: Any) -> EvolvedRegressor:
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True)
        x = self._scale_x(X)
        self.y_mean_ = float(y.mean())
        scale = float(y.std())
        self.y_scale_ = scale if scale > 0 else 1.0
        self._fit_search([(y - self.y_mean_) / self.y_scale_], x)
        return self

    def predict(self, X: Any) -> FloatArray:
        return self._logits(X)[:, 0] * self.y_scale_ + self.y_mean_


class EvolvedClassifier(ClassifierMixin, _Evolved):  # type: ignore[misc]
    """Evolves a classification algorithm on (X, y); two classes or more (one-vs-rest with
    one program); see the module docstring and docs/python.md. After fit, as the regressor's,
    plus `classes_`."""

    _kind = CLASSIFICATION

    def fit(self, X: Any, y: Any) -> EvolvedClassifier:
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_, encoded = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError("Classifier can't train when only one class is present.")
        x = self._scale_x(X)
        positives = [1] if len(self.classes_) == 2 else range(len(self.classes_))
        targets = [(encoded == k).astype(np.float64) for k in positives]
        self._fit_search(targets, x)
        return self

    def decision_function(self, X: Any) -> FloatArray:
        """The logits: (n,) for two classes (positive: `classes_[1]`), else (n, classes)."""
        logits = self._logits(X)
        return logits[:, 0] if len(self.classes_) == 2 else logits

    def predict_proba(self, X: Any) -> FloatArray:
        """Two classes: the sigmoid of the logit; more: each class's sigmoid, normalised."""
        logits = self._logits(X)
        p: FloatArray = np.vectorize(sigmoid, otypes=[np.float64])(logits)
        if len(self.classes_) == 2:
            return np.concatenate([1.0 - p, p], axis=1)
        total = p.sum(axis=1, keepdims=True)
        return np.where(total > 0, p / np.where(total > 0, total, 1.0), 1.0 / p.shape[1])

    def predict(self, X: Any) -> npt.NDArray[Any]:
        logits = self._logits(X)
        if len(self.classes_) == 2:
            chosen = (logits[:, 0] > 0.0).astype(np.int64)
        else:
            chosen = np.argmax(logits, axis=1)
        labels: npt.NDArray[Any] = self.classes_[chosen]
        return labels
