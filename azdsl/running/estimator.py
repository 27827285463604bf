"""A scikit-learn estimator of a fixed program: train it on a user's arrays, then predict.

`fit` runs Setup, then Predict and Learn on every example as docs/semantics.md trains (the same
sigmoid for classification, the same stop on a NaN or too large error), keeping the memory;
`predict` runs Predict only, on the trained memory. With predict_mode="stateless" (the
default) every row starts from the memory as training left it, so a prediction depends on its
row only (as scikit-learn expects: the same rows give the same answers, in any batch); with
"stateful" the writes of Predict persist from row to row and call to call, as in the paper's
validation. It follows scikit-learn's conventions (get_params / set_params, clone,
`__sklearn_tags__`, `score`) without importing scikit-learn until asked for its tags.
"""

from __future__ import annotations

import dataclasses
import inspect
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


PREDICT_MODES = ("stateless", "stateful")
_PARAMS = ("program_or_path", "epochs", "seed", "backend", "kind", "memory", "max_abs_error",
           "predict_mode")


def _check_epochs(epochs: object) -> None:
    if isinstance(epochs, bool) or not isinstance(epochs, int) or not 1 <= epochs <= MAX_INT:
        raise ConfigError(f"epochs must be a whole number in [1, {MAX_INT}], got {epochs!r}")


def _arrays(ctx: Any) -> list[npt.NDArray[Any]]:
    """Every numpy array a session's ctx holds (in tuples, lists and dataclasses): each
    backend keeps its memory in such arrays and changes them in place, so copying them back
    restores the memory."""
    if isinstance(ctx, np.ndarray):
        return [ctx]
    if isinstance(ctx, tuple | list):
        return [a for item in ctx for a in _arrays(item)]
    if dataclasses.is_dataclass(ctx) and not isinstance(ctx, type):
        return [a for f in dataclasses.fields(ctx) for a in _arrays(getattr(ctx, f.name))]
    return []


class Algorithm:
    """An azdsl program used as a scikit-learn estimator (the program is read at once, so a
    missing file or a bad program fails here; `program` is the Program)."""

    def __init__(self, program_or_path: Program | str | os.PathLike[str], *, epochs: int = 1,
                 seed: int = 0, backend: str = "interp", kind: str | None = None,
                 memory: tuple[int, int, int] | None = None,
                 max_abs_error: float = 100.0, predict_mode: str = "stateless") -> None:
        self.program_or_path = program_or_path
        self._program, self._read_from = load_program(program_or_path), program_or_path
        _check_epochs(epochs)
        self.epochs = epochs
        self.seed = seed
        self.backend = backend
        self.kind = kind  # REGRESSION, CLASSIFICATION, or None to tell from y
        self.memory = memory
        self.max_abs_error = max_abs_error
        self.predict_mode = predict_mode  # one of PREDICT_MODES
        self._runner: Callable[..., float] | None = None
        self._ctx: Any = None
        self._predict_runs = 0
        self._trained: list[tuple[npt.NDArray[Any], npt.NDArray[Any]]] = []

    @property
    def program(self) -> Program:
        """The program, read again when set_params gave another `program_or_path`."""
        if self._read_from is not self.program_or_path:
            self._program, self._read_from = load_program(self.program_or_path), \
                self.program_or_path
        return self._program

    # ---- scikit-learn's conventions ---------------------------------------------------------

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _PARAMS}

    def set_params(self, **params: Any) -> Algorithm:
        for name, value in params.items():
            if name not in _PARAMS:
                raise ValueError(f"Invalid parameter {name!r} for Algorithm (valid: "
                                 f"{', '.join(_PARAMS)})")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        changed = [f"{k}={v!r}" for k, v in self.get_params().items()
                   if k != "program_or_path" and v != _DEFAULTS[k]]
        source = self.program_or_path
        shown = "<Program>" if isinstance(source, Program) else repr(source)
        return f"Algorithm({', '.join([shown, *changed])})"

    def __sklearn_tags__(self) -> Any:
        from sklearn.utils import ClassifierTags, InputTags, RegressorTags, Tags, TargetTags

        classifier = self.kind == CLASSIFICATION
        return Tags(estimator_type="classifier" if classifier else "regressor"
                    if self.kind == REGRESSION else None,
                    target_tags=TargetTags(required=True),
                    classifier_tags=ClassifierTags(multi_class=False) if classifier else None,
                    regressor_tags=RegressorTags() if self.kind == REGRESSION else None,
                    input_tags=InputTags())

    def score(self, X: Any, y: Any) -> float:
        """Accuracy for classification (labels 0/1), R² for regression."""
        y_arr = np.asarray(y, dtype=np.float64)
        predicted = self.predict(X)
        if self.kind_ == CLASSIFICATION:
            return float(np.mean(predicted == y_arr))
        total = float(((y_arr - y_arr.mean()) ** 2).sum())
        residual = float(((y_arr - predicted) ** 2).sum())
        if total == 0.0:
            return 1.0 if residual == 0.0 else 0.0
        return 1.0 - residual / total

    # A session's ctx holds raw addresses (the VM's) and compiled functions: a pickle (or a
    # deep copy) keeps the memory's arrays instead, and a fresh session gets them back.

    def __getstate__(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k not in ("_runner", "_ctx")}
        if self._runner is not None:
            state["_memory_now"] = [a.copy() for a in _arrays(self._ctx)]
            state["_trained"] = [saved for _, saved in self._trained]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        now = state.pop("_memory_now", None)
        self.__dict__.update(state)
        self._runner, self._ctx = None, None
        if now is not None:
            self._runner, self._ctx = self._open(self.program_, self.n_features_in_)
            arrays = _arrays(self._ctx)
            for array, saved in zip(arrays, now, strict=True):
                array[...] = saved
            self._trained = list(zip(arrays, state["_trained"], strict=True))

    def _open(self, program: Program, dim: int) -> tuple[Callable[..., float], Any]:
        backend = get_backend(self.backend)
        if backend.open_session is None:
            raise ConfigError(f"backend {self.backend!r} cannot run an estimator")
        settings = Settings(seed=self.seed, max_abs_error=self.max_abs_error, memory=self.memory)
        return backend.open_session(program, dim, settings, 0)

    # ---- fitting and predicting -------------------------------------------------------------

    def fit(self, X: Any, y: Any) -> Algorithm:
        x_arr = np.ascontiguousarray(X, dtype=np.float64)
        y_arr = np.ascontiguousarray(y, dtype=np.float64)
        if x_arr.ndim != 2 or y_arr.shape != (x_arr.shape[0],) or 0 in x_arr.shape:
            raise ConfigError(f"fit needs X of shape (n, F) and y of shape (n,), n, F >= 1; "
                              f"got {x_arr.shape} and {y_arr.shape}")
        dim = x_arr.shape[1]
        _check_epochs(self.epochs)
        if self.predict_mode not in PREDICT_MODES:
            raise ConfigError(f"predict_mode must be one of {', '.join(PREDICT_MODES)}, got "
                              f"{self.predict_mode!r}")
        kind = self.kind or _infer_kind(y_arr)
        if kind not in (REGRESSION, CLASSIFICATION):
            raise ConfigError(f"kind must be {REGRESSION!r} or {CLASSIFICATION!r}")
        validate(self.program, dim)
        # Before the memory is allocated: CheckError beyond MAX_CELLS, ConfigError if too large.
        check_memory([cells_need(memory_sizes(self.program, self.memory), dim, "fit")])
        runner, ctx = self._open(self.program, dim)
        self.kind_, self.n_features_in_ = kind, dim
        self._runner, self._ctx, self._predict_runs = runner, ctx, 0
        self.n_train_steps_, self.diverged_ = self._train(x_arr, y_arr, kind == CLASSIFICATION)
        self.program_ = self.program
        self._trained_runs = self._predict_runs
        self._trained = [(a, a.copy()) for a in _arrays(ctx)]  # the memory training left
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
        stateless = self.predict_mode != "stateful"
        for i, row in enumerate(x_arr):
            if stateless:  # every row from the trained memory, as the same execution
                for array, trained in self._trained:
                    array[...] = trained
                out[i] = self._runner(self._ctx, COMPONENT_PREDICT, self._trained_runs, row,
                                      0.0)
            else:
                out[i] = self._runner(self._ctx, COMPONENT_PREDICT, self._predict_runs, row,
                                      0.0)
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


_DEFAULTS = {name: p.default for name, p in inspect.signature(Algorithm.__init__).parameters.items()
             if name in _PARAMS}


def _infer_kind(y: FloatArray) -> str:
    values = set(np.unique(y).tolist())
    return CLASSIFICATION if values == {0.0, 1.0} else REGRESSION
