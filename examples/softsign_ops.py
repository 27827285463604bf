"""An azdsl extension: the op `v = softsign(v)`, the task kind "softsign_teacher" and the
fitness "atan_mae".

examples/softsign.toml names this file under [extensions] modules, so `azdsl evolve
examples/softsign.toml` (and every island worker) loads it before reading the op lists.
docs/extending.md explains each argument.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from azdsl.extend import register_fitness, register_op, register_task_kind

Floats = npt.NDArray[np.float64]


def softsign(a: Floats) -> Floats:
    """x / (1 + |x|) elementwise: the interpreter's (numpy) semantics."""
    return a / (1.0 + np.abs(a))


# The compiled backends (generated code, the VM) expand this template: the same IEEE
# operations in the same order as the numpy function, so every backend gives the same bits.
register_op(
    "v = softsign(v)",
    softsign,
    "for k in range(F):\n    O[k] = A[k] / (1.0 + abs(A[k]))",
    cost=4_500_000,  # about an elementwise vector division (docs/extending.md)
    doc="elementwise x / (1 + |x|)",
)


def softsign_teacher(dim: int, num_train: int, num_valid: int, param_seed: int,
                     data_seed: int) -> tuple[Floats, Floats, Floats, Floats]:
    """y = w . softsign(x), x and w standard normal: a pure function of its seeds."""
    w = np.random.default_rng([param_seed, 1]).standard_normal(dim)
    x = np.random.default_rng([data_seed, 2]).standard_normal((num_train + num_valid, dim))
    squashed = softsign(x)
    y = np.zeros(len(x))
    for k in range(dim):  # one term at a time, in index order (no BLAS)
        y = y + squashed[:, k] * w[k]
    return x[:num_train], y[:num_train], x[num_train:], y[num_train:]


register_task_kind("softsign_teacher", softsign_teacher)


# A fitness: plain Python that Numba compiles (the compiled backends run it compiled, the
# interpreter as it is). The terms are summed over the validation examples in order.
def absolute_error(y: float, prediction: float) -> float:
    """One validation example's term."""
    return abs(y - prediction)


def atan_mae(total: float, count: int) -> float:
    """The task's fitness from the summed terms: 1 - (2/pi) atan(mean absolute error), the
    built-in regression fitness with the MAE in place of the RMSE (in [0, 1], higher better)."""
    return 1.0 - (2.0 / math.pi) * math.atan(total / count)


register_fitness("atan_mae", absolute_error, atan_mae, kinds=("regression",),
                 description="1 - (2/pi) atan(mean absolute validation error)")
