"""The train/validate/fitness protocol (docs/semantics.md), written once for every backend.

`run_lockstep` is plain Python in the subset Numba compiles (numpy arrays, ints, floats,
loops; no objects, no exceptions, no calls to other module functions). The interpreter calls
it as it is with a Python runner; a compiled backend does `numba.njit(cache=True)(run_lockstep)`
and passes an njit runner and its own context.

It runs tasks with the same limits in lockstep: each runner call advances a group of tasks,
each with its own memory, by the same step. A backend supplies two functions:

`runner(ctx, component, execution, behind, tasks, n) -> None` runs one component (0 Setup,
    1 Predict, 2 Learn) for each of tasks[0..n-1] (in any order); execution - behind[t] is
    how many times that component already ran in task t's evaluation (the key of its random
    draws; 0 for Setup). ctx is whatever the backend needs and holds every task's memory
    (the protocol never touches it).
`access(ctx, action, t, xs, row, y) -> float` reads or writes task t's memory:
    FEED_PREDICT   v0 <- xs[t, row], s0 <- 0.0 (what Predict sees); returns 0.0
    FEED_LEARN     v0 <- xs[t, row], s0 <- y (what Learn sees); returns 0.0. A backend may
                   skip v0 where Predict cannot have written it since it was fed.
    STORE_PREDICTION  s1 <- y (the sigmoid of classification); returns y
    READ_PREDICTION   returns s1

The protocol owns everything else: the example order, the sigmoid (computed here so every
backend computes it identically), early stopping, validation errors and the fitness (the
built-in one inlined, or the registered functions the caller passes: azdsl.running.fitness).
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
from azdsl.running.fitness import check_tasks, user_fitness
from azdsl.running.tasks import CLASSIFICATION, Task

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# exp(x) is finite up to this float64 and inf above it; Python's math.exp raises beyond it,
# so the sigmoid returns the limit 1/(1+inf) = 0.0 itself there (what compiled code computes).
EXP_MAX = 709.782712893384

COMPONENT_SETUP = 0
COMPONENT_PREDICT = 1
COMPONENT_LEARN = 2
# the access actions of run_lockstep
FEED_PREDICT = 1
FEED_LEARN = 2
STORE_PREDICTION = 3
READ_PREDICTION = 4

COUNT_TRAIN_RECORDED = 0
COUNT_VALID_RECORDED = 1
COUNT_LEARN_STEPS = 2


def sigmoid(z: float) -> float:
    """1 / (1 + exp(-z)) in float64, as run_lockstep computes it (its body repeats these
    lines)."""
    if -z > EXP_MAX:
        return 0.0
    return 1.0 / (1.0 + math.exp(-z))


def run_lockstep(
    runner: Any,
    access: Any,
    ctx: Any,
    x_train: FloatArray,
    y_train: FloatArray,
    x_valid: FloatArray,
    y_valid: FloatArray,
    perm: IntArray,
    n_train: IntArray,
    n_valid: IntArray,
    epochs: IntArray,
    classification: npt.NDArray[np.bool_],
    max_abs_error: float,
    errors: FloatArray,
    counts: IntArray,
    fitness: FloatArray,
    fitness_example: Any = None,
    fitness_score: Any = None,
) -> None:
    """Train and validate one program on every task t (docs/semantics.md): fitness[t].

    Tasks are padded arrays: x_train[t, example, feature], y_train[t, example], the same for
    validation, perm[t, example]; n_train[t], n_valid[t], epochs[t], classification[t] their
    limits. Tasks with the same limits run in lockstep, each runner call advancing all of
    them by one step, so a backend dispatches each instruction once for the whole group;
    each task's arithmetic, and so its result, is what it would be alone. A task's next
    features are fed in the same pass that checks its last prediction.

    Epoch 0 visits training examples 0..n_train-1 in order, later epochs perm[t, 0..n_train-1].
    errors[t] (any length, 0 for none) receives, for the first epoch only and as long as it
    has room, the training errors |y - s1| step by step, then the validation errors (|y - s1|
    for regression, 0/1 for classification); counts[t] (length >= 3) the number of training
    errors recorded, of validation errors recorded, and of Learn steps run.

    The fitness of an epoch is the built-in one by task kind, or, given the functions of a
    registered fitness (azdsl.running.fitness), fitness_score(the sum of fitness_example(y,
    s1) over the validation examples in order, their count), non-finite counting as 0.
    (Numba drops the branches of functions not given: the built-in path stays as it was.)
    """
    n_tasks = x_train.shape[0]
    capacity = errors.shape[1]
    grouped = np.zeros(n_tasks, dtype=np.bool_)
    active = np.zeros(n_tasks, dtype=np.int64)  # the group's tasks still training (any order)
    checking = np.zeros(n_tasks, dtype=np.int64)  # those still validating this epoch
    rows = np.zeros(n_tasks, dtype=np.int64)  # each task's training example in this step
    # Every task of a group runs Learn at every step it is in, and Predict too, except that
    # a task skips the rest of a validation pass where it fails: it is then behind[t] runs
    # behind the group's count of Predict runs.
    behind = np.zeros(n_tasks, dtype=np.int64)
    never_behind = np.zeros(n_tasks, dtype=np.int64)
    recorded = np.zeros(n_tasks, dtype=np.int64)
    best = np.zeros(n_tasks)
    wrong = np.zeros(n_tasks)
    squares = np.zeros(n_tasks)
    for first in range(n_tasks):
        if grouped[first]:
            continue
        # The group: `first` and every later task with its limits.
        g_train = n_train[first]
        g_valid = n_valid[first]
        g_epochs = epochs[first]
        g_classification = classification[first]
        n_active = 0
        for t in range(first, n_tasks):
            if (not grouped[t] and n_train[t] == g_train and n_valid[t] == g_valid
                    and epochs[t] == g_epochs and classification[t] == g_classification):
                grouped[t] = True
                active[n_active] = t
                n_active += 1
                counts[t, COUNT_TRAIN_RECORDED] = 0
                counts[t, COUNT_VALID_RECORDED] = 0
                counts[t, COUNT_LEARN_STEPS] = 0
                fitness[t] = 0.0
                behind[t] = 0
                recorded[t] = 0
                best[t] = 0.0
        if g_train <= 0 or g_epochs <= 0:
            continue  # rejected by the train budget: nothing runs
        runner(ctx, COMPONENT_SETUP, 0, never_behind, active, n_active)
        predict_runs = 0
        learn_runs = 0
        for epoch in range(g_epochs):
            recording = epoch == 0 and capacity > 0
            # Training: a task whose error is NaN or too large stops with its best fitness.
            for q in range(n_active):
                t = active[q]
                row = 0 if epoch == 0 else perm[t, 0]
                rows[t] = row
                access(ctx, FEED_PREDICT, t, x_train, row, 0.0)
            for i in range(g_train):
                runner(ctx, COMPONENT_PREDICT, predict_runs, behind, active, n_active)
                predict_runs += 1
                q = 0
                while q < n_active:
                    t = active[q]
                    prediction = access(ctx, READ_PREDICTION, t, x_train, 0, 0.0)
                    if g_classification:
                        # sigmoid(prediction), the lines of `sigmoid` (no helpers here)
                        z = -prediction
                        prediction = 0.0 if z > EXP_MAX else 1.0 / (1.0 + math.exp(z))
                        access(ctx, STORE_PREDICTION, t, x_train, 0, prediction)
                    row = rows[t]
                    y = y_train[t, row]
                    error = abs(y - prediction)
                    if recording and recorded[t] < capacity:
                        errors[t, recorded[t]] = error
                        recorded[t] += 1
                        counts[t, COUNT_TRAIN_RECORDED] += 1
                    if not error <= max_abs_error:
                        fitness[t] = best[t]
                        counts[t, COUNT_LEARN_STEPS] = learn_runs
                        n_active -= 1
                        active[q] = active[n_active]
                    else:
                        access(ctx, FEED_LEARN, t, x_train, row, y)
                        q += 1
                if n_active == 0:
                    break
                runner(ctx, COMPONENT_LEARN, learn_runs, never_behind, active, n_active)
                learn_runs += 1
                following = i + 1
                if following < g_train:
                    for q in range(n_active):
                        t = active[q]
                        row = following if epoch == 0 else perm[t, following]
                        rows[t] = row
                        access(ctx, FEED_PREDICT, t, x_train, row, 0.0)
            if n_active == 0:
                break
            # Validation: Predict only, in stored order; its memory writes persist. A task
            # whose error is NaN or too large stops validating: fitness 0 for this epoch.
            n_checking = n_active
            for q in range(n_active):
                t = active[q]
                checking[q] = t
                wrong[t] = 0.0
                squares[t] = 0.0
                if g_valid > 0:
                    access(ctx, FEED_PREDICT, t, x_valid, 0, 0.0)
            for i in range(g_valid):
                runner(ctx, COMPONENT_PREDICT, predict_runs, behind, checking, n_checking)
                predict_runs += 1
                following = i + 1
                q = 0
                while q < n_checking:
                    t = checking[q]
                    prediction = access(ctx, READ_PREDICTION, t, x_valid, 0, 0.0)
                    y = y_valid[t, i]
                    if g_classification:
                        error = 0.0 if (y > 0.5) == (prediction > 0.0) else 1.0
                    else:
                        error = y - prediction
                    if recording and recorded[t] < capacity:
                        errors[t, recorded[t]] = abs(error)
                        recorded[t] += 1
                        counts[t, COUNT_VALID_RECORDED] += 1
                    if not abs(error) <= max_abs_error:
                        behind[t] += g_valid - following
                        n_checking -= 1
                        checking[q] = checking[n_checking]
                    else:
                        if fitness_example is not None:  # `wrong` sums the user's terms
                            wrong[t] += fitness_example(y, prediction)
                        else:
                            wrong[t] += error
                            squares[t] += error * error
                        if following < g_valid:
                            access(ctx, FEED_PREDICT, t, x_valid, following, 0.0)
                        q += 1
            if g_valid > 0:
                for q in range(n_checking):
                    t = checking[q]
                    value = 0.0
                    if fitness_score is not None:
                        value = fitness_score(wrong[t], g_valid)
                        if not value < math.inf:  # NaN and inf (and -inf below) count as 0
                            value = 0.0
                    elif g_classification:
                        value = 1.0 - wrong[t] / g_valid
                    else:
                        rmse = math.sqrt(squares[t] / g_valid)
                        if rmse < math.inf:
                            value = 1.0 - (2.0 / math.pi) * math.atan(rmse)
                    if value > best[t]:
                        best[t] = value
        for q in range(n_active):
            t = active[q]
            fitness[t] = best[t]
            counts[t, COUNT_LEARN_STEPS] = learn_runs


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
    fitness: str | None = None  # a registered fitness's name (None: built in, by task kind)


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


@dataclass(frozen=True)
class PackedTasks:
    """Tasks of one F as padded arrays (task t, example, coordinate): run_lockstep's input."""

    dim: int
    x_train: FloatArray
    y_train: FloatArray
    x_valid: FloatArray
    y_valid: FloatArray
    perm: IntArray
    n_train: IntArray
    n_valid: IntArray
    epochs: IntArray
    classification: npt.NDArray[np.bool_]
    task_index: IntArray

    @staticmethod
    def pack(tasks: Sequence[Task], settings: Settings) -> PackedTasks:
        dims = {task.dim for task in tasks}
        if len(dims) != 1:
            raise ValueError("PackedTasks holds tasks of one F")
        dim = dims.pop()
        count = len(tasks)
        most_train = max(1, *(len(t.y_train) for t in tasks))
        most_valid = max(1, *(len(t.y_valid) for t in tasks))
        packed = PackedTasks(
            dim, np.zeros((count, most_train, dim)), np.zeros((count, most_train)),
            np.zeros((count, most_valid, dim)), np.zeros((count, most_valid)),
            np.zeros((count, most_train), dtype=np.int64), np.zeros(count, dtype=np.int64),
            np.zeros(count, dtype=np.int64), np.zeros(count, dtype=np.int64),
            np.zeros(count, dtype=np.bool_), np.zeros(count, dtype=np.int64))
        for t, task in enumerate(tasks):
            n_train, n_valid, epochs = task_limits(task, settings)
            packed.x_train[t, : len(task.y_train)] = task.x_train
            packed.y_train[t, : len(task.y_train)] = task.y_train
            packed.x_valid[t, : len(task.y_valid)] = task.x_valid
            packed.y_valid[t, : len(task.y_valid)] = task.y_valid
            packed.perm[t, : len(task.perm)] = task.perm
            packed.n_train[t] = n_train
            packed.n_valid[t] = n_valid
            packed.epochs[t] = epochs
            packed.classification[t] = task.kind == CLASSIFICATION
            packed.task_index[t] = task.index
        return packed

    def __len__(self) -> int:
        return int(self.x_train.shape[0])

    def arrays(self) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, IntArray, IntArray,
                              IntArray, IntArray, npt.NDArray[np.bool_]]:
        """The task arguments of run_lockstep, in its order."""
        return (self.x_train, self.y_train, self.x_valid, self.y_valid, self.perm,
                self.n_train, self.n_valid, self.epochs, self.classification)


def outcomes_of(fitness: FloatArray, errors: FloatArray, counts: IntArray) -> list[TaskOutcome]:
    """run_lockstep's outputs of one program, task by task."""
    outcomes = []
    for t in range(fitness.shape[0]):
        train, valid, steps = (int(c) for c in counts[t])
        outcomes.append(TaskOutcome(float(fitness[t]), steps, errors[t, : train + valid].copy(),
                                    train, valid))
    return outcomes


def by_dim(tasks: Sequence[Task],
           evaluate_group: Callable[[list[Task]], list[TaskOutcome]]) -> list[TaskOutcome]:
    """Outcomes in task order, the tasks of each F evaluated together by `evaluate_group`."""
    outcomes: list[TaskOutcome | None] = [None] * len(tasks)
    for dim in sorted({t.dim for t in tasks}):
        chosen = [n for n, t in enumerate(tasks) if t.dim == dim]
        for n, outcome in zip(chosen, evaluate_group([tasks[n] for n in chosen]), strict=True):
            outcomes[n] = outcome
    return [o for o in outcomes if o is not None]


def _interp_backend() -> Backend:
    from azdsl.running import interp, rng

    def evaluate_tasks(program: Program, tasks: Sequence[Task],
                       settings: Settings) -> list[TaskOutcome]:
        sizes = memory_sizes(program, settings.memory)
        user = user_fitness(settings.fitness)  # its Python functions: what Numba compiles
        fitness_args = (user.example, user.score) if user else ()

        def evaluate_packed(packed: PackedTasks) -> list[TaskOutcome]:
            machines = [interp.Machine.fresh(program, sizes, packed.dim,
                                             rng.stream(settings.seed, int(index)))
                        for index in packed.task_index]
            n = len(packed)
            fitness = np.zeros(n)
            errors = np.zeros((n, settings.record))
            counts = np.zeros((n, 3), dtype=np.int64)
            run_lockstep(interp.lockstep_runner, interp.access, machines, *packed.arrays(),
                         settings.max_abs_error, errors, counts, fitness, *fitness_args)
            return outcomes_of(fitness, errors, counts)

        return by_dim(tasks, lambda chosen: evaluate_packed(PackedTasks.pack(chosen, settings)))

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
    fitness: str | None = None,
) -> Evaluation:
    """Score `program` on `tasks` (docs/semantics.md) with the named backend; `fitness`
    names a registered fitness (azdsl.running.fitness; default: built in, by task kind)."""
    task_list = [tasks] if isinstance(tasks, Task) else list(tasks)
    if not task_list:
        raise ConfigError("no tasks to evaluate on")
    check_program(program, task_list)
    check_tasks(fitness, task_list)
    settings = Settings(seed, max_abs_error, memory, num_train, num_valid, epochs, record,
                        fitness)
    outcomes = get_backend(backend).evaluate_tasks(program, task_list, settings)
    per_task = tuple(o.fitness for o in outcomes)
    return Evaluation(combine_fitness(per_task, combine), per_task,
                      sum(o.train_steps for o in outcomes), tuple(outcomes))
