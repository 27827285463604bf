"""The train/validate/fitness protocol (docs/semantics.md), written once for every backend.

`run_task` is plain Python in the subset Numba compiles (numpy arrays, ints, floats, loops; no
objects, no exceptions, no calls to other module functions). The interpreter calls it as it
is with a Python runner; a compiled backend does `numba.njit(cache=True)(run_task)` and passes
an njit runner and its own context.

The runner protocol: `runner(ctx, component, execution, x, y) -> float`
    ctx        whatever the backend needs; it holds the memory (the protocol never touches it)
    component  0 Setup: run Setup (x, y are ignored; x is a zero row)
               1 Predict: v0 <- x, s0 <- y (always 0.0 here), run Predict
               2 Learn: v0 <- x, s0 <- y, run Learn
               3 store the prediction: s1 <- y, run nothing (the sigmoid of classification)
    execution  how many times this component already ran in this task evaluation (the key of
               its random draws); 0 for Setup and for code 3
    returns    s1 after the call

The protocol owns everything else: the example order, the sigmoid (computed here so every
backend computes it identically), early stopping, validation errors and the fitness.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from azdsl.errors import CheckError, ConfigError
from azdsl.language.ops import Kind
from azdsl.language.program import Program, validate
from azdsl.limits import MAX_CELLS, cell_problems
from azdsl.running.tasks import CLASSIFICATION, Task

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# exp(x) is finite up to this float64 and inf above it; Python's math.exp raises beyond it,
# so the sigmoid returns the limit 1/(1+inf) = 0.0 itself there (what compiled code computes).
EXP_MAX = 709.782712893384

COMPONENT_SETUP = 0
COMPONENT_PREDICT = 1
COMPONENT_LEARN = 2
STORE_PREDICTION = 3

COUNT_TRAIN_RECORDED = 0
COUNT_VALID_RECORDED = 1
COUNT_LEARN_STEPS = 2


def sigmoid(z: float) -> float:
    """1 / (1 + exp(-z)) in float64, as run_task computes it (its body repeats these lines)."""
    if -z > EXP_MAX:
        return 0.0
    return 1.0 / (1.0 + math.exp(-z))


def run_task(
    runner: Any,
    ctx: Any,
    x_train: FloatArray,
    y_train: FloatArray,
    x_valid: FloatArray,
    y_valid: FloatArray,
    perm: IntArray,
    n_train: int,
    n_valid: int,
    epochs: int,
    classification: bool,
    max_abs_error: float,
    errors: FloatArray,
    counts: IntArray,
) -> float:
    """Train and validate one program on one task (docs/semantics.md); return the task's fitness.

    Epoch 0 visits training examples 0..n_train-1 in order, later epochs perm[0..n_train-1].
    `errors` (any length, 0 for none) receives, for the first epoch only and as long as it
    has room, the training errors |y - s1| step by step, then the validation errors (|y - s1|
    for regression, 0/1 for classification); `counts` (length >= 3) receives the number of
    training errors recorded, of validation errors recorded, and of Learn steps run.
    """
    counts[COUNT_TRAIN_RECORDED] = 0
    counts[COUNT_VALID_RECORDED] = 0
    counts[COUNT_LEARN_STEPS] = 0
    if n_train <= 0 or epochs <= 0:
        return 0.0  # rejected by the train budget: nothing runs
    capacity = errors.shape[0]
    recorded = 0
    no_features = np.zeros(x_train.shape[1])
    runner(ctx, COMPONENT_SETUP, 0, no_features, 0.0)
    predict_runs = 0
    learn_runs = 0
    best = 0.0
    for epoch in range(epochs):
        # Training.
        for i in range(n_train):
            k = i if epoch == 0 else perm[i]
            x = x_train[k]
            y = y_train[k]
            prediction = runner(ctx, COMPONENT_PREDICT, predict_runs, x, 0.0)
            predict_runs += 1
            if classification:
                # sigmoid(prediction), the lines of `sigmoid` (run_task calls no helpers)
                z = -prediction
                prediction = 0.0 if z > EXP_MAX else 1.0 / (1.0 + math.exp(z))
                runner(ctx, STORE_PREDICTION, 0, x, prediction)
            error = abs(y - prediction)
            if epoch == 0 and recorded < capacity:
                errors[recorded] = error
                recorded += 1
                counts[COUNT_TRAIN_RECORDED] += 1
            if not error <= max_abs_error:  # NaN or too large: stop training
                return best
            runner(ctx, COMPONENT_LEARN, learn_runs, x, y)
            learn_runs += 1
            counts[COUNT_LEARN_STEPS] += 1
        # Validation: Predict only, in stored order; its memory writes persist.
        diverged = False
        wrong = 0.0
        squares = 0.0
        for j in range(n_valid):
            y = y_valid[j]
            prediction = runner(ctx, COMPONENT_PREDICT, predict_runs, x_valid[j], 0.0)
            predict_runs += 1
            if classification:
                error = 0.0 if (y > 0.5) == (prediction > 0.0) else 1.0
            else:
                error = y - prediction
            if epoch == 0 and recorded < capacity:
                errors[recorded] = abs(error)
                recorded += 1
                counts[COUNT_VALID_RECORDED] += 1
            if not abs(error) <= max_abs_error:
                diverged = True
                break
            wrong += error
            squares += error * error
        fitness = 0.0
        if not diverged and n_valid > 0:
            if classification:
                fitness = 1.0 - wrong / n_valid
            else:
                rmse = math.sqrt(squares / n_valid)
                if rmse < math.inf:
                    fitness = 1.0 - (2.0 / math.pi) * math.atan(rmse)
        if fitness > best:
            best = fitness
    return best


# ---- the Python-level API ---------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """How to evaluate: the run's seed and the limits every backend applies alike."""

    seed: int = 0
    max_abs_error: float = 100.0
    memory: tuple[int, int, int] | None = None  # configured (scalars, vectors, matrices)
    num_train: int | None = None  # at most this many training examples per epoch
    num_valid: int | None = None  # at most this many validation examples
    epochs: int | None = None  # overrides the task's epochs
    record: int = 0  # error slots per task for the functional-equivalence cache


@dataclass(frozen=True, eq=False)
class TaskOutcome:
    """One task's result from a backend."""

    fitness: float
    train_steps: int
    errors: FloatArray  # recorded errors: training ones, then validation ones
    train_recorded: int
    valid_recorded: int


@dataclass(frozen=True)
class Evaluation:
    """A program's score on a set of tasks."""

    fitness: float
    task_fitness: tuple[float, ...]
    train_steps: int
    outcomes: tuple[TaskOutcome, ...] = field(default=(), compare=False, repr=False)


EvaluateTasks = Callable[[Program, Sequence[Task], Settings], list[TaskOutcome]]
# A session for the estimator: (program, dim, settings, task index) -> (runner, ctx).
OpenSession = Callable[[Program, int, Settings, int], tuple[Callable[..., float], Any]]


@dataclass(frozen=True)
class Backend:
    name: str
    evaluate_tasks: EvaluateTasks
    open_session: OpenSession | None = None


_BACKENDS: dict[str, Backend] = {}
# Importing the module registers the backend.
_LAZY_MODULES = {"jit": "azdsl.running.codegen", "py": "azdsl.running.codegen",
                 "vm": "azdsl.running.vm"}
# What a search (and its run folder) may name: "py" is the compiled code run uncompiled, for
# tests only.
SEARCH_BACKENDS = ("vm", "interp", "jit")


def register_backend(backend: Backend) -> None:
    """Make a backend available by name (compiled backends call this when imported)."""
    _BACKENDS[backend.name] = backend


def get_backend(name: str) -> Backend:
    if name not in _BACKENDS and name in _LAZY_MODULES:
        importlib.import_module(_LAZY_MODULES[name])
    if name not in _BACKENDS:
        known = ", ".join(sorted(set(_BACKENDS) | set(_LAZY_MODULES)))
        raise ConfigError(f"unknown backend {name!r} (known: {known})")
    return _BACKENDS[name]


def memory_sizes(program: Program, configured: tuple[int, int, int] | None) -> tuple[int, int, int]:
    """Cells per kind: what the program needs, or more if configured; CheckError beyond
    MAX_CELLS of a kind (before any backend allocates them)."""
    needs = program.memory_needs()
    sizes = (needs[Kind.SCALAR], needs[Kind.VECTOR], needs[Kind.MATRIX])
    if configured is not None:
        sizes = (max(sizes[0], configured[0]), max(sizes[1], configured[1]),
                 max(sizes[2], configured[2]))
    if max(sizes) > MAX_CELLS:
        raise CheckError(cell_problems(program)
                         or f"memory {configured} has more than {MAX_CELLS} cells of a kind")
    return sizes


def task_limits(task: Task, settings: Settings) -> tuple[int, int, int]:
    """(n_train per epoch, n_valid, epochs) for one task under the settings."""
    n_train = len(task.y_train)
    n_valid = len(task.y_valid)
    if settings.num_train is not None:
        n_train = min(n_train, settings.num_train)
    if settings.num_valid is not None:
        n_valid = min(n_valid, settings.num_valid)
    epochs = task.epochs if settings.epochs is None else settings.epochs
    return n_train, n_valid, epochs


def run_tasks(
    run: Callable[..., float],
    runner: Any,
    make_ctx: Callable[[Program, Task, Settings], Any],
    program: Program,
    tasks: Sequence[Task],
    settings: Settings,
) -> list[TaskOutcome]:
    """A backend's evaluate_tasks from its run_task (plain or jitted), runner and contexts."""
    outcomes = []
    for task in tasks:
        n_train, n_valid, epochs = task_limits(task, settings)
        errors = np.zeros(settings.record)
        counts = np.zeros(3, dtype=np.int64)
        fitness = run(
            runner, make_ctx(program, task, settings), task.x_train, task.y_train,
            task.x_valid, task.y_valid, task.perm, n_train, n_valid, epochs,
            task.kind == CLASSIFICATION, settings.max_abs_error, errors, counts,
        )
        recorded = int(counts[COUNT_TRAIN_RECORDED] + counts[COUNT_VALID_RECORDED])
        outcomes.append(TaskOutcome(float(fitness), int(counts[COUNT_LEARN_STEPS]),
                                    errors[:recorded], int(counts[COUNT_TRAIN_RECORDED]),
                                    int(counts[COUNT_VALID_RECORDED])))
    return outcomes


def _interp_backend() -> Backend:
    from azdsl.running import interp, rng

    def make_ctx(program: Program, task: Task, settings: Settings) -> interp.Machine:
        sizes = memory_sizes(program, settings.memory)
        return interp.Machine.fresh(program, sizes, task.dim, rng.stream(settings.seed, task.index))

    def evaluate_tasks(program: Program, tasks: Sequence[Task],
                       settings: Settings) -> list[TaskOutcome]:
        return run_tasks(run_task, interp.runner, make_ctx, program, tasks, settings)

    def open_session(program: Program, dim: int, settings: Settings,
                     task_index: int) -> tuple[Callable[..., float], Any]:
        sizes = memory_sizes(program, settings.memory)
        machine = interp.Machine.fresh(program, sizes, dim, rng.stream(settings.seed, task_index))
        return interp.runner, machine

    return Backend("interp", evaluate_tasks, open_session)


register_backend(_interp_backend())


def combine_first(per_task: FloatArray, count: int, median: bool,
                  scratch: FloatArray) -> float:
    """The fitness of per_task[:count] combined: the mean (summed in order) or the upper
    median (index count // 2 after sorting; scratch holds count values). Array code: the
    search compiles it (running.kernels)."""
    if median:
        part = scratch[:count]
        part[:] = per_task[:count]
        part.sort()
        return float(part[count // 2])
    total = 0.0
    for k in range(count):
        total += per_task[k]
    return float(total / count)


def combine_fitness(fitnesses: Sequence[float], how: str = "mean") -> float:
    """Mean (summed in order) or upper median (index n // 2 after sorting) of task fitnesses."""
    if not fitnesses:
        raise ConfigError("no tasks to evaluate on")
    if how in ("mean", "median"):
        values = np.array(fitnesses, dtype=np.float64)
        return combine_first(values, len(values), how == "median", np.empty(len(values)))
    raise ConfigError(f"unknown combination {how!r} (use 'mean' or 'median')")


def check_program(program: Program, tasks: Sequence[Task]) -> None:
    """Raise CheckError unless the program fits every task's feature size."""
    for dim in sorted({task.dim for task in tasks}):
        validate(program, dim)


def evaluate(
    program: Program,
    tasks: Task | Sequence[Task],
    *,
    seed: int = 0,
    backend: str = "interp",
    max_abs_error: float = 100.0,
    combine: str = "mean",
    memory: tuple[int, int, int] | None = None,
    num_train: int | None = None,
    num_valid: int | None = None,
    epochs: int | None = None,
    record: int = 0,
) -> Evaluation:
    """Score `program` on `tasks` (docs/semantics.md) with the named backend."""
    task_list = [tasks] if isinstance(tasks, Task) else list(tasks)
    if not task_list:
        raise ConfigError("no tasks to evaluate on")
    check_program(program, task_list)
    settings = Settings(seed, max_abs_error, memory, num_train, num_valid, epochs, record)
    outcomes = get_backend(backend).evaluate_tasks(program, task_list, settings)
    per_task = tuple(o.fitness for o in outcomes)
    return Evaluation(combine_fitness(per_task, combine), per_task,
                      sum(o.train_steps for o in outcomes), tuple(outcomes))
