"""azdsl: AutoML-Zero algorithms as a small language, run fast and searched by evolution.

The pipeline, one subpackage per stage: azdsl.language (the op table, programs, text),
azdsl.running (tasks, the evaluation protocol, the backends), azdsl.search (mutation, the
per-child step, experiments, lineage), azdsl.scale (islands on every core or on Ray), and the
command line on top (azdsl.cli, azdsl.commands). From Python (docs/python.md): `evolve` runs a
search and returns its Result (hall of fame and front included), and azdsl.estimators holds
scikit-learn estimators that evolve an algorithm on the user's arrays.
"""

from __future__ import annotations

import importlib
from typing import Any

# Costs numpy and lark at import, never numba.
from azdsl.language.parse import parse
from azdsl.language.printer import unparse
from azdsl.language.simplify import simplify
from azdsl.running.evaluate import evaluate

__version__ = "0.1.0"

# Public names, imported on first use so `import azdsl` stays instant (and numba-free).
_LAZY = {
    "Algorithm": "azdsl.running.estimator",
    "MutationConfig": "azdsl.search.mutate",
    "mutate": "azdsl.search.mutate",
    "random_program": "azdsl.search.mutate",
    "Search": "azdsl.search.evolve",
    "STOP": "azdsl.search.evolve",
    "evolve": "azdsl.search.evolve",
    "pareto_front": "azdsl.search.hall_of_fame",
    "EvolvedRegressor": "azdsl.estimators",
    "EvolvedClassifier": "azdsl.estimators",
    "register_fitness": "azdsl.extend",
    "register_op": "azdsl.extend",
    "register_task_kind": "azdsl.extend",
    "load_extensions": "azdsl.extend",
}


__all__ = ["STOP", "Algorithm", "EvolvedClassifier", "EvolvedRegressor", "MutationConfig",
           "Search", "evaluate", "evolve", "load_extensions", "mutate", "pareto_front", "parse",
           "random_program", "register_fitness", "register_op", "register_task_kind",
           "simplify", "unparse"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'azdsl' has no attribute {name!r}")
