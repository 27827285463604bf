"""running.kernels (Numba) against running.rng and the op table's numpy semantics, bit for bit."""

from __future__ import annotations

import math
import os
import struct
import subprocess
import sys
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from azdsl.language.ops import OPS_BY_CODE
from azdsl.running import kernels, rng

u64 = st.integers(0, 2**64 - 1)
special = st.sampled_from([0.0, -0.0, math.inf, -math.inf, math.nan, 1e-310, -1e-310, 1.0, -1.0])
floats = st.one_of(special, st.floats(allow_nan=True, allow_infinity=True))


def bits(x: float) -> int:
    return int(struct.unpack("<Q", struct.pack("<d", x))[0])


def same(a: float, b: float) -> bool:
    """Bit-equal, with every NaN equal to every NaN."""
    return (math.isnan(a) and math.isnan(b)) or bits(a) == bits(b)


@settings(max_examples=300, deadline=None)
@given(u64, st.integers(0, 2**32))
def test_mix64_and_stream(z: int, task: int) -> None:
    assert int(kernels.mix64(np.uint64(z))) == rng.mix64(z)
    assert int(kernels.stream(np.uint64(z), task)) == rng.stream(z, task)


@settings(max_examples=300, deadline=None)
@given(u64, st.integers(0, 2), st.integers(-1, 2**16 + 5), st.integers(0, 2**40))
def test_draw_key(stream: int, component: int, ordinal: int, execution: int) -> None:
    # Ordinal -1 (a dead random instruction) must wrap the same way in both.
    expected = rng.draw_key(stream, component, ordinal, execution)
    assert int(kernels.draw_key(np.uint64(stream), component, ordinal, execution)) == expected


@settings(max_examples=300, deadline=None)
@given(u64, st.integers(0, 2**40))
def test_uniform_and_gauss(key: int, counter: int) -> None:
    assert same(kernels.uniform01(np.uint64(key), counter), rng.uniform01(key, counter))
    assert same(kernels.gauss01(np.uint64(key), counter), rng.gauss01(key, counter))


def test_uniform_and_gauss_many_counters() -> None:
    # One key, the counters a matrix of a large F uses: catches any drift in the libm calls.
    key = rng.draw_key(rng.stream(7, 3), 1, 2, 11)
    for counter in range(2000):
        assert same(kernels.uniform01(np.uint64(key), counter), rng.uniform01(key, counter))
        assert same(kernels.gauss01(np.uint64(key), counter), rng.gauss01(key, counter))


def _reference(code: int, *inputs: float) -> float:
    ins = [np.float64(x) for x in inputs]
    with np.errstate(all="ignore"):
        return float(OPS_BY_CODE[code].semantics(np.float64(0.0), ins, (), None))


def _reference_vector(code: int, *inputs: float) -> float:
    ins = [np.array([x]) for x in inputs]
    with np.errstate(all="ignore"):
        return float(OPS_BY_CODE[code].semantics(np.zeros(1), ins, (), None)[0])


@settings(max_examples=300, deadline=None)
@given(floats, floats)
def test_min_max_match_every_kind(a: float, b: float) -> None:
    for fn, codes in ((kernels.nan_min, (44, 45, 46)), (kernels.nan_max, (47, 48, 49))):
        got = fn(a, b)
        assert same(got, fn.py_func(a, b))
        assert same(got, _reference(codes[0], a, b))
        assert same(got, _reference_vector(codes[1], a, b))


@settings(max_examples=200, deadline=None)
@given(floats)
def test_heaviside(x: float) -> None:
    assert same(kernels.heaviside_scalar(x), _reference(15, x))
    assert same(kernels.heaviside_strict(x), _reference_vector(16, x))
    assert same(kernels.heaviside_scalar.py_func(x), _reference(15, x))
    assert same(kernels.heaviside_strict.py_func(x), _reference_vector(16, x))


_FLOAT_PTR: Any = kernels.float_ptr
_INT_PTR: Any = kernels.int_ptr


def _bump(address: int, int_address: int) -> float:
    p = _FLOAT_PTR(address)
    q = _INT_PTR(int_address)
    p[2] = p[1] + q[1]
    return float(p[2])


def test_pointer_helpers_read_and_write() -> None:
    from numba import njit

    bump: Any = njit(_bump)
    values = np.array([0.0, 1.5, 0.0])
    ints = np.array([0, 4], dtype=np.int64)
    assert bump(values.ctypes.data, ints.ctypes.data) == 5.5
    assert values[2] == 5.5


def _scalar_function_ops() -> list[tuple[int, str]]:
    import re

    found = []
    for op in OPS_BY_CODE.values():
        match = re.fullmatch(r"O = np\.(\w+)\(A\)", op.template)
        if match:
            found.append((op.code, match[1]))
    return found


def test_numba_scalar_functions_match_the_reference_semantics() -> None:
    """sin, exp, log...: Numba calls libm, and so do the ops' reference semantics (numpy's
    SIMD loops differ from libm in the last bit on some CPUs, so the reference avoids them)."""
    from numba import njit

    g = np.random.default_rng(0)
    xs = np.concatenate([g.normal(size=4000), g.normal(0, 100, 4000), g.uniform(-1, 1, 4000),
                         np.exp(g.uniform(-700, 700, 4000)), np.array(
                             [0.0, -0.0, math.inf, -math.inf, math.nan, 710.0, -746.0, 1e308])])
    assert len(_scalar_function_ops()) == 8
    for code, name in _scalar_function_ops():
        namespace: dict[str, Any] = {"np": np}
        exec(f"def apply(xs):\n    out = np.empty_like(xs)\n    for i in range(xs.size):\n"
             f"        out[i] = np.{name}(xs[i])\n    return out\n", namespace)
        got = njit(error_model="numpy")(namespace["apply"])(xs)
        with np.errstate(all="ignore"):
            want = np.array([OPS_BY_CODE[code].semantics(None, (x,), (), None) for x in xs])
        same_bits = (got.view(np.uint64) == want.view(np.uint64)) | (np.isnan(got) & np.isnan(want))
        assert same_bits.all(), (name, xs[~same_bits][:5])


def test_numba_settings_hold_whoever_imports_numba_first() -> None:
    """azdsl.running sets SVML off (bit-identical libm) and the SLP vectoriser on before
    Numba reads its configuration, even where numba is imported right after azdsl."""
    code = ("import azdsl.running.vm, numba; from numba.core import config; "
            "print(config.DISABLE_INTEL_SVML, config.SLP_VECTORIZE)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, check=True)
    assert done.stdout.split() == ["1", "1"]


def test_data_address_is_the_array_data_pointer() -> None:
    from numba import njit

    array = np.arange(5.0)
    address = njit(lambda a: kernels.data_address(a[2:]))(array)
    assert address == array.ctypes.data + 2 * array.itemsize
