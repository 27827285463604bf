"""The fitness table: how a task's validation predictions become its fitness.

Each entry is an `example(y, prediction)` summed over the validation examples in order and a
`score(total, count)` that turns the sum into the fitness (docs/extending.md). The built-in
choice by task kind (accuracy for classification, 1 - 2/pi atan(RMSE) for regression) is
inlined in evaluate.run_lockstep and stays the default; the two appear here under their
names so a config may name them, and the functions here compute exactly what the inlined
lines do. Fitnesses registered by extensions (azdsl.extend.register_fitness) are called by
run_lockstep instead: as Python by the interpreter, compiled by Numba in generated modules.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from azdsl.errors import ConfigError
from azdsl.running.tasks import CLASSIFICATION, REGRESSION, USER_TASK_KINDS, Task, TaskSpec

LABELS = (REGRESSION, CLASSIFICATION)


@dataclass(frozen=True)
class Fitness:
    """One named fitness: its functions, the task kinds it applies to, and for a user's the
    Numba-compiled functions and a digest of their code (part of generated modules' text)."""

    name: str
    example: Callable[[float, float], float]
    score: Callable[[float, int], float]
    kinds: tuple[str, ...]
    description: str
    builtin: bool = False
    compiled: tuple[Any, Any] | None = None  # (example, score) as Numba dispatchers
    digest: str = ""


def accuracy_example(y: float, prediction: float) -> float:
    """1 for a wrong class (the prediction's sign against the 0/1 label), else 0."""
    return 0.0 if (y > 0.5) == (prediction > 0.0) else 1.0


def accuracy_score(total: float, count: int) -> float:
    return 1.0 - total / count


def atan_rmse_example(y: float, prediction: float) -> float:
    error = y - prediction
    return error * error


def atan_rmse_score(total: float, count: int) -> float:
    rmse = math.sqrt(total / count)
    return 1.0 - (2.0 / math.pi) * math.atan(rmse) if rmse < math.inf else 0.0


FITNESSES: dict[str, Fitness] = {
    "accuracy": Fitness("accuracy", accuracy_example, accuracy_score, (CLASSIFICATION,),
                        "the fraction of validation examples classified right (the built-in "
                        "fitness of classification)", builtin=True),
    "atan_rmse": Fitness("atan_rmse", atan_rmse_example, atan_rmse_score, (REGRESSION,),
                         "1 - (2/pi) atan(RMSE) on the validation examples (the built-in "
                         "fitness of regression)", builtin=True),
}
BUILTIN_FITNESSES = tuple(FITNESSES)


def fitness_named(name: str) -> Fitness:
    """The registered fitness `name`; ConfigError naming those known otherwise."""
    found = FITNESSES.get(name) if isinstance(name, str) else None
    if found is None:
        raise ConfigError(f"unknown fitness {name!r} (known: {', '.join(FITNESSES)}); a fitness "
                          "of your own must be registered by an extension the config loads "
                          "([extensions] modules, docs/extending.md)")
    return found


def user_fitness(name: str | None) -> Fitness | None:
    """The fitness evaluation calls as functions: None for the built-in choice (no name, or a
    built-in's name, which the inlined lines compute)."""
    if name is None:
        return None
    found = fitness_named(name)
    return None if found.builtin else found


def check_labels(name: str | None, labels: Sequence[str], where: str = "tasks") -> None:
    """ConfigError unless fitness `name` applies to every label kind given."""
    if name is None:
        return
    found = fitness_named(name)
    wrong = sorted({label for label in labels if label not in found.kinds})
    if wrong:
        raise ConfigError(f"fitness {name!r} scores {' and '.join(found.kinds)} tasks; the "
                          f"{where} include {' and '.join(wrong)} ones")


def check_tasks(name: str | None, tasks: Sequence[Task]) -> None:
    check_labels(name, [task.kind for task in tasks])


def spec_label(spec: TaskSpec) -> str | None:
    """How a spec's tasks are scored, as far as the spec says: regression, classification,
    or None for an npz file whose own `kind` array decides."""
    if spec.kind == "npz":
        return spec.label_kind
    if spec.kind in USER_TASK_KINDS:
        return USER_TASK_KINDS[spec.kind].label
    return CLASSIFICATION if spec.kind == "projected" else REGRESSION


def generated_lines(name: str | None, *, jit: bool = True) -> tuple[list[str], str]:
    """(lines, arguments) for a generated module: lines binding a registered fitness's
    `fitness_example` and `fitness_score` (compiled, or with jit=False its Python functions)
    and the arguments its protocol call appends; none for the built-in fitness, whose module
    is what it was before fitnesses could be registered. A user fitness's digest is in the
    text, so the module, named by its text, is another one when that code changes."""
    found = user_fitness(name)
    if found is None:
        return [], ""
    return ([f"# the fitness: {found.name!r}, registered (code {found.digest}, inlined)",
             "from azdsl.running.fitness import fitness_functions",
             f"fitness_example, fitness_score = fitness_functions({found.name!r}, jit={jit})",
             ""], ", fitness_example, fitness_score")


def fitness_functions(name: str, *, jit: bool = True) -> tuple[Any, Any]:
    """A registered fitness's (example, score): as Numba dispatchers, or its Python ones."""
    found = fitness_named(name)
    if not jit:
        return found.example, found.score
    if found.compiled is None:
        raise ConfigError(f"fitness {name!r} is built in: it has no compiled functions")
    return found.compiled
