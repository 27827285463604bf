"""A scikit-learn-style estimator: train an algorithm on a user's arrays, then predict with it.

`fit` runs Setup, then Predict and Learn on every example as docs/semantics.md trains (the same
sigmoid for classification, the same stop on a NaN or too large error), keeping the memory;
`predict` runs Predict only, on the trained memory (whose writes persist, as in validation).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from azdsl.errors import CheckError, ConfigError
from azdsl.language.program import Program, validate
from azdsl.limits import MAX_INT, cells_need, check_memory
from azdsl.running.evaluate import (
    COMPONENT_LEARN,
    COMPONENT_PREDICT,
    COMPONENT_SETUP,
    STORE_PREDICTION,
    Settings,
    get_backend,
    memory_sizes,
    sigmoid,
)
from azdsl.running.tasks import CLASSIFICATION, REGRESSION, epoch_permutation

FloatArray = npt.NDArray[np.float64]


def load_program(program_or_path: Program | str | os.PathLike[str]) -> Program:
    """A Program as given, parsed from text (anything with `def `), or read from a file."""
    if isinstance(program_or_path, Program):
        return program_or_path
    from azdsl.language.parse import (  # type: ignore[import-not-found, import-untyped, unused-ignore]
        parse,
        parse_file,
    )

    text = str(program_or_path)
    if isinstance(program_or_path, str) and "def " in text:
        return parse(text)  # type: ignore[no-any-return, unused-ignore]
    return parse_file(Path(program_or_path))  # type: ignore[no-any-return, unused-ignore]


class Algorithm:
    """An azdsl program used like a scikit-learn estimator."""

    def __init__(self, program_or_path: Program | str | os.PathLike[str], *, epochs: int = 1,
                 seed: int = 0, backend: str = "interp", kind: str | None = None,
                 memory: tuple[int, int, int] | None = None,
                 max_abs_error: float = 100.0) -> None:
        self.program = load_program(program_or_path)
        if isinstance(epochs, bool) or not isinstance(epochs, int) or not 1 <= epochs <= MAX_INT:
            raise ConfigError(f"epochs must be a whole number in [1, {MAX_INT}], got {epochs!r}")
        self.epochs = epochs
        self.seed = seed
        self.backend = backend
        self.kind = kind  # REGRESSION, CLASSIFICATION, or None to tell from y
        self.memory = memory
        self.max_abs_error = max_abs_error
        self._runner: Callable[..., float] | None = None
        self._ctx: Any = None
        self._predict_runs = 0

    def fit(self, X: Any, y: Any) -> Algorithm:
        x_arr = np.ascontiguousarray(X, dtype=np.float64)
        y_arr = np.ascontiguousarray(y, dtype=np.float64)
        if x_arr.ndim != 2 or y_arr.shape != (x_arr.shape[0],) or 0 in x_arr.shape:
            raise ConfigError(f"fit needs X of shape (n, F) and y of shape (n,), n, F >= 1; "
                              f"got {x_arr.shape} and {y_arr.shape}")
        dim = x_arr.shape[1]
        kind = self.kind or _infer_kind(y_arr)
        if kind not in (REGRESSION, CLASSIFICATION):
            raise ConfigError(f"kind must be {REGRESSION!r} or {CLASSIFICATION!r}")
        validate(self.program, dim)
        # Before the memory is allocated: CheckError beyond MAX_CELLS, ConfigError if too large.
        check_memory([cells_need(memory_sizes(self.program, self.memory), dim, "fit")])
        backend = get_backend(self.backend)
        if backend.open_session is None:
            raise ConfigError(f"backend {self.backend!r} cannot run an estimator")
        settings = Settings(seed=self.seed, max_abs_error=self.max_abs_error, memory=self.memory)
        runner, ctx = backend.open_session(self.program, dim, settings, 0)
        self.kind_, self.n_features_in_ = kind, dim
        self._runner, self._ctx, self._predict_runs = runner, ctx, 0
        self.n_train_steps_, self.diverged_ = self._train(x_arr, y_arr, kind == CLASSIFICATION)
        if self.diverged_:
            warnings.warn("training stopped early: the prediction error became nan or exceeded "
                          f"max_abs_error={self.max_abs_error}", RuntimeWarning, stacklevel=2)
        return self

    def _train(self, x: FloatArray, y: FloatArray, classification: bool) -> tuple[int, bool]:
        assert self._runner is not None
        run, ctx = self._runner, self._ctx
        run(ctx, COMPONENT_SETUP, 0, np.zeros(x.shape[1]), 0.0)
        order = np.arange(len(y))
        later = epoch_permutation(len(y), self.seed)
        steps = 0
        for epoch in range(self.epochs):
            for k in order if epoch == 0 else later:
                prediction = run(ctx, COMPONENT_PREDICT, self._predict_runs, x[k], 0.0)
                self._predict_runs += 1
                if classification:
                    prediction = sigmoid(prediction)
                    run(ctx, STORE_PREDICTION, 0, x[k], prediction)
                if not abs(y[k] - prediction) <= self.max_abs_error:
                    return steps, True
                run(ctx, COMPONENT_LEARN, steps, x[k], float(y[k]))
                steps += 1
        return steps, False

    def decision_function(self, X: Any) -> FloatArray:
        """The raw prediction s1 for each row (the logit, for classification)."""
        if self._runner is None:
            raise ConfigError("call fit before predicting")
        x_arr = np.ascontiguousarray(X, dtype=np.float64)
        if x_arr.ndim != 2 or x_arr.shape[1] != self.n_features_in_:
            raise CheckError(f"X must have shape (n, {self.n_features_in_}); got {x_arr.shape}")
        out = np.empty(x_arr.shape[0])
        for i, row in enumerate(x_arr):
            out[i] = self._runner(self._ctx, COMPONENT_PREDICT, self._predict_runs, row, 0.0)
            self._predict_runs += 1
        return out

    def predict(self, X: Any) -> npt.NDArray[Any]:
        """Regression: the predictions; classification: labels 0/1 (1 where the logit > 0)."""
        scores = self.decision_function(X)
        if self.kind_ == CLASSIFICATION:
            return (scores > 0.0).astype(np.int64)
        return scores

    def predict_proba(self, X: Any) -> FloatArray:
        """Classification: columns P(0), P(1) from the sigmoid of the logit."""
        if self._runner is not None and self.kind_ != CLASSIFICATION:
            raise ConfigError("predict_proba is for classification")
        p = np.array([sigmoid(float(z)) for z in self.decision_function(X)])
        return np.stack([1.0 - p, p], axis=1)


def _infer_kind(y: FloatArray) -> str:
    values = set(np.unique(y).tolist())
    return CLASSIFICATION if values == {0.0, 1.0} else REGRESSION
