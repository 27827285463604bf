"""Numba twins of running.rng and the helpers that op templates call (ops.TEMPLATE_HELPERS).

Every function here is bit-identical to its pure-Python definition (rng.py, language.ops'
numpy semantics); tests hold them equal. Integer work is done in uint64 throughout: in Numba,
mixing uint64 with int64 promotes to float64, so every constant and argument is cast first.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from azdsl.language import liveness
from azdsl.running import evaluate, rng

# liveness.live_rows compiled: the search's pruning calls it, and liveness.live_mask uses it
# whenever this module is loaded (plain Python costs about 300 us for the 2-layer network).
live_rows = njit(cache=True)(liveness.live_rows)
# evaluate.combine_first compiled: the search combines its tasks' fitness with it.
combine_first = njit(cache=True, error_model="numpy")(evaluate.combine_first)

_GOLDEN = np.uint64(rng.GOLDEN)
MIX_MUL1 = np.uint64(0xBF58476D1CE4E5B9)
MIX_MUL2 = np.uint64(0x94D049BB133111EB)
_COUNTER_STEP = np.uint64(rng.COUNTER_STEP)
_SH11 = np.uint64(11)
_SH27 = np.uint64(27)
_SH30 = np.uint64(30)
_SH31 = np.uint64(31)
_SH40 = np.uint64(40)
_SH56 = np.uint64(56)
_BYTE = np.uint64(0xFF)
_WORD = np.uint64(0xFFFF)
INV_2_53 = rng.INV_2_53
TWO_PI = rng.TWO_PI


@njit(cache=True)
def mix64(z: np.uint64) -> np.uint64:
    """SplitMix64's finaliser (rng.mix64)."""
    z = np.uint64(z) + _GOLDEN
    z = (z ^ (z >> _SH30)) * MIX_MUL1
    z = (z ^ (z >> _SH27)) * MIX_MUL2
    return z ^ (z >> _SH31)


@njit(cache=True)
def stream(seed: np.uint64, task_index: int) -> np.uint64:
    """The stream of one (evaluation seed, task index) pair (rng.stream)."""
    return mix64(mix64(np.uint64(seed)) + np.uint64(task_index))


@njit(cache=True)
def draw_key(stream_id: np.uint64, component: int, ordinal: int, execution: int) -> np.uint64:
    """The key of one execution of one random instruction (rng.draw_key)."""
    head = mix64(
        np.uint64(stream_id)
        ^ ((np.uint64(component) & _BYTE) << _SH56)
        ^ ((np.uint64(ordinal) & _WORD) << _SH40)
    )
    return mix64(head + np.uint64(execution))


@njit(cache=True)
def uniform01(key: np.uint64, counter: int) -> float:
    """Uniform in [0, 1) with 53 random bits (rng.uniform01)."""
    bits = mix64(np.uint64(key) + np.uint64(counter) * _COUNTER_STEP)
    return float(bits >> _SH11) * INV_2_53


@njit(cache=True)
def gauss01(key: np.uint64, counter: int) -> float:
    """Standard normal by Box-Muller (rng.gauss01); the same libm log/cos as Python's math."""
    c = int(counter) * 2
    u1 = uniform01(key, c)
    u2 = uniform01(key, c + 1)
    return math.sqrt(-2.0 * math.log(1.0 - u1)) * math.cos(TWO_PI * u2)


@njit(cache=True)
def nan_min(a: float, b: float) -> float:
    """np.where((a < b) | isnan(a), a, b): the smaller, nan if either is nan."""
    return a if (a < b or a != a) else b


@njit(cache=True)
def nan_max(a: float, b: float) -> float:
    """np.where((a > b) | isnan(a), a, b): the larger, nan if either is nan."""
    return a if (a > b or a != a) else b


@njit(cache=True)
def heaviside_scalar(x: float) -> float:
    """1.0 where x >= 0, else 0.0 (nan gives 0.0): the scalar heaviside."""
    return 1.0 if x >= 0.0 else 0.0


@njit(cache=True)
def heaviside_strict(x: float) -> float:
    """1.0 where x > 0, else 0.0 (nan gives 0.0): the vector and matrix heaviside."""
    return 1.0 if x > 0.0 else 0.0


# ---- raw pointers for the VM ------------------------------------------------------------------
# The VM passes its arrays to the dispatch loop as addresses: arrays in a tuple are reference
# counted each time the tuple is unpacked (two calls into Numba's runtime per array per call),
# which cost more than the instructions themselves. Pointer indexing also skips the
# negative-index fix-up. The caller keeps the arrays alive.


def _pointer_intrinsic(name: str, element: Any) -> Any:
    """An intrinsic `name(address)`: the `element` array at an integer address
    (`array.ctypes.data`), as a pointer."""
    pointer = types.CPointer(element)  # type: ignore[no-untyped-call]

    def typer(typingctx: Any, address: Any) -> Any:
        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            return builder.inttoptr(args[0], context.get_value_type(pointer))

        return pointer(address), codegen

    typer.__name__ = typer.__qualname__ = name
    return intrinsic(typer)


float_ptr = _pointer_intrinsic("float_ptr", types.float64)
int_ptr = _pointer_intrinsic("int_ptr", types.int64)
uint_ptr = _pointer_intrinsic("uint_ptr", types.uint64)


@cache
def stack_buffer(size: int) -> Any:
    """An intrinsic `() -> pointer` to `size` float64s on the calling function's stack
    (allocated once, in its entry block). The VM copies instruction inputs there: the
    compiler knows such a buffer is no cell of the memory, so it may vectorise the op."""

    def typer(typingctx: Any) -> Any:
        pointer = types.CPointer(types.float64)  # type: ignore[no-untyped-call]

        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            return cgutils.alloca_once(builder, ir.DoubleType(), size=size)  # type: ignore[no-untyped-call]

        return pointer(), codegen

    typer.__name__ = typer.__qualname__ = f"stack_buffer_{size}"
    return intrinsic(typer)


@intrinsic
def data_address(typingctx: Any, array: Any) -> Any:
    """The address of an array's data, as `array.ctypes.data` but without building the
    ctypes object, which counts a reference to the array (two atomic operations): the VM's
    runner passes two addresses per component run, and that cost about 3 ns a run."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        make = cgutils.create_struct_proxy(signature.args[0])  # type: ignore[no-untyped-call]
        proxy = make(context, builder, value=args[0])
        return builder.ptrtoint(proxy.data, context.get_value_type(types.uint64))

    return types.uint64(array), codegen
