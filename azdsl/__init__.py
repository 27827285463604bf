"""azdsl: AutoML-Zero algorithms as a small language, run fast and searched by evolution."""

from __future__ import annotations

import importlib
from typing import Any

# Bound eagerly, not lazily: a lazy `azdsl.parse` would be replaced by the submodule object as
# soon as anything imports `azdsl.parse`. Costs numpy and lark at import, never numba.
from azdsl.evaluate import evaluate
from azdsl.parse import parse
from azdsl.printer import unparse

__version__ = "0.1.0"

# Public names, imported on first use so `import azdsl` stays instant (and numba-free).
_LAZY = {
    "Algorithm": "azdsl.estimator",
}


__all__ = ["Algorithm", "evaluate", "parse", "unparse"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'azdsl' has no attribute {name!r}")
