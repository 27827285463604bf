"""Every op of the reference interpreter against hand-computed values (F = 2 unless said)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from azdsl.language.ops import OPS
from azdsl.language.program import Cell, Instr
from azdsl.running import rng
from azdsl.running.interp import Draws, Memory, execute

INF, NAN = math.inf, math.nan


def base_memory(dim: int = 2) -> Memory:
    mem = Memory.zeros((6, 6, 4), dim)
    mem.s[1:5] = [3.0, -2.0, 4.0, 0.5]
    if dim == 2:
        mem.v[1] = [1.0, -2.0]
        mem.v[2] = [3.0, 4.0]
        mem.v[3] = [0.0, -0.5]
        mem.m[1] = [[1.0, 2.0], [3.0, 4.0]]
        mem.m[2] = [[0.0, -1.0], [2.0, 0.5]]
    return mem


def run(text_out: str, code: int, ins: tuple[str, ...] = (), lits: tuple[Any, ...] = (),
        mem: Memory | None = None, draws: Draws | None = None) -> tuple[Memory, Memory]:
    """Run one instruction; return (memory before, memory after)."""
    mem = mem if mem is not None else base_memory()
    before = mem.copy()
    out = Cell.parse(text_out) if text_out else None
    execute(Instr(code, out, tuple(Cell.parse(c) for c in ins), lits), mem, draws)
    return before, mem


def value(mem: Memory, cell: str) -> Any:
    return mem.read(Cell.parse(cell))


def same(a: Any, b: Any) -> bool:
    """Equal as float64 arrays, nan equal to nan, -0.0 equal to 0.0."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))


# (code, output, inputs, literals, expected value of the output)
CASES: list[tuple[int, str, tuple[str, ...], tuple[Any, ...], Any]] = [
    (1, "s5", ("s1", "s2"), (), 1.0),
    (2, "s5", ("s1", "s2"), (), 5.0),
    (3, "s5", ("s1", "s2"), (), -6.0),
    (4, "s5", ("s1", "s2"), (), -1.5),
    (4, "s5", ("s1", "s0"), (), INF),  # 1/0 style: 3 / 0
    (4, "s5", ("s2", "s0"), (), -INF),
    (4, "s5", ("s0", "s0"), (), NAN),
    (5, "s5", ("s2",), (), 2.0),
    (6, "s5", ("s3",), (), 0.25),
    (6, "s5", ("s0",), (), INF),
    (7, "s5", ("s4",), (), math.sin(0.5)),
    (8, "s5", ("s4",), (), math.cos(0.5)),
    (9, "s5", ("s4",), (), math.tan(0.5)),
    (10, "s5", ("s4",), (), math.asin(0.5)),
    (10, "s5", ("s1",), (), NAN),
    (11, "s5", ("s4",), (), math.acos(0.5)),
    (11, "s5", ("s2",), (), NAN),
    (12, "s5", ("s1",), (), math.atan(3.0)),
    (13, "s5", ("s4",), (), math.exp(0.5)),
    (14, "s5", ("s3",), (), math.log(4.0)),
    (14, "s5", ("s2",), (), NAN),  # log of a negative number
    (14, "s5", ("s0",), (), -INF),
    (15, "s5", ("s0",), (), 1.0),  # scalar heaviside: 1 at 0
    (15, "s5", ("s2",), (), 0.0),
    (15, "s5", ("s1",), (), 1.0),
    (16, "v5", ("v1",), (), [1.0, 0.0]),
    (16, "v5", ("v3",), (), [0.0, 0.0]),  # vector heaviside: 0 at 0
    (17, "m3", ("m2",), (), [[0.0, 0.0], [1.0, 1.0]]),
    (18, "v5", ("s2", "v1"), (), [-2.0, 4.0]),
    (19, "v5", ("s1",), (), [3.0, 3.0]),
    (20, "v5", ("v2",), (), [1.0 / 3.0, 0.25]),
    (20, "v5", ("v3",), (), [INF, -2.0]),
    (21, "s5", ("v2",), (), 5.0),
    (22, "v5", ("v1",), (), [1.0, 2.0]),
    (23, "v5", ("v1", "v2"), (), [4.0, 2.0]),
    (24, "v5", ("v1", "v2"), (), [-2.0, -6.0]),
    (25, "v5", ("v1", "v2"), (), [3.0, -8.0]),
    (26, "v5", ("v1", "v2"), (), [1.0 / 3.0, -0.5]),
    (26, "v5", ("v1", "v3"), (), [INF, 4.0]),
    (27, "s5", ("v1", "v2"), (), -5.0),
    (28, "m3", ("v1", "v2"), (), [[3.0, 4.0], [-6.0, -8.0]]),
    (29, "m3", ("s2", "m1"), (), [[-2.0, -4.0], [-6.0, -8.0]]),
    (30, "m3", ("m1",), (), [[1.0, 0.5], [1.0 / 3.0, 0.25]]),
    (31, "v5", ("m1", "v1"), (), [-3.0, -5.0]),
    (32, "m3", ("v1",), (), [[1.0, 1.0], [-2.0, -2.0]]),
    (33, "m3", ("v1",), (), [[1.0, -2.0], [1.0, -2.0]]),
    (34, "s5", ("m1",), (), math.sqrt(30.0)),
    (35, "v5", ("m1",), (), [math.sqrt(10.0), math.sqrt(20.0)]),  # per column
    (36, "v5", ("m1",), (), [math.sqrt(5.0), 5.0]),  # per row
    (37, "m3", ("m1",), (), [[1.0, 3.0], [2.0, 4.0]]),
    (38, "m3", ("m2",), (), [[0.0, 1.0], [2.0, 0.5]]),
    (39, "m3", ("m1", "m2"), (), [[1.0, 1.0], [5.0, 4.5]]),
    (40, "m3", ("m1", "m2"), (), [[1.0, 3.0], [1.0, 3.5]]),
    (41, "m3", ("m1", "m2"), (), [[0.0, -2.0], [6.0, 2.0]]),
    (42, "m3", ("m1", "m2"), (), [[INF, -2.0], [1.5, 8.0]]),
    (43, "m3", ("m1", "m2"), (), [[4.0, 0.0], [8.0, -1.0]]),
    (44, "s5", ("s1", "s2"), (), -2.0),
    (45, "v5", ("v1", "v2"), (), [1.0, -2.0]),
    (46, "m3", ("m1", "m2"), (), [[0.0, -1.0], [2.0, 0.5]]),
    (47, "s5", ("s1", "s2"), (), 3.0),
    (48, "v5", ("v1", "v2"), (), [3.0, 4.0]),
    (49, "m3", ("m1", "m2"), (), [[1.0, 2.0], [3.0, 4.0]]),
    (50, "s5", ("v1",), (), -0.5),
    (51, "s5", ("m1",), (), 2.5),
    (52, "v5", ("m1",), (), [1.5, 3.5]),
    (53, "v5", ("m1",), (), [0.5, 0.5]),
    (54, "s5", ("v1",), (), 1.5),
    (55, "s5", ("m1",), (), math.sqrt(1.25)),
    (56, "s5", (), (0.7,), 0.7),
    (57, "v1", (), (1, 9.0), [1.0, 9.0]),
    (58, "m1", (), (1, 0, 9.0), [[1.0, 2.0], [9.0, 4.0]]),
]


@pytest.mark.parametrize(("code", "out", "ins", "lits", "expected"), CASES)
def test_op_value(code: int, out: str, ins: tuple[str, ...], lits: tuple[Any, ...],
                  expected: Any) -> None:
    before, after = run(out, code, ins, lits)
    assert same(value(after, out), expected)
    # Nothing but the output cell changes.
    touched = Cell.parse(out)
    after.write(touched, before.read(touched))
    assert same(after.s, before.s) and same(after.v, before.v) and same(after.m, before.m)


def test_every_op_has_a_hand_computed_case() -> None:
    covered = {case[0] for case in CASES} | {0} | set(RANDOM_CODES)
    assert covered == {op.code for op in OPS}


def test_pass_changes_nothing() -> None:
    before, after = run("", 0)
    assert same(after.s, before.s) and same(after.v, before.v) and same(after.m, before.m)


def test_scalar_results_are_float64() -> None:
    _, after = run("s5", 4, ("s1", "s0"))
    assert after.s.dtype == np.float64 and value(after, "s5") == INF


@pytest.mark.parametrize(("code", "out", "a", "b"), [
    (44, "s5", "s1", "s2"), (47, "s5", "s1", "s2"),
    (45, "v5", "v1", "v2"), (48, "v5", "v1", "v2"),
    (46, "m3", "m1", "m2"), (49, "m3", "m1", "m2"),
])
def test_min_max_propagate_nan_from_either_side(code: int, out: str, a: str, b: str) -> None:
    for nan_cell in (a, b):
        mem = base_memory()
        cell = Cell.parse(nan_cell)
        mem.write(cell, np.full(np.shape(mem.read(cell)), NAN))
        _, after = run(out, code, (a, b), mem=mem)
        assert np.isnan(value(after, out)).all()


@pytest.mark.parametrize(("code", "out", "cell"), [(15, "s5", "s1"), (16, "v5", "v1"),
                                                   (17, "m3", "m1")])
def test_heaviside_of_nan_is_zero(code: int, out: str, cell: str) -> None:
    mem = base_memory()
    mem.write(Cell.parse(cell), np.full(np.shape(value(mem, cell)), NAN))
    _, after = run(out, code, (cell,), mem=mem)
    assert same(value(after, out), np.zeros(np.shape(value(after, out))))


def test_std_of_a_constant_is_zero_even_when_the_radicand_rounds_below_zero() -> None:
    mem = base_memory(dim=3)
    mem.v[1] = [0.1, 0.1, 0.1]
    mem.m[1] = [[0.1] * 3] * 3
    total, squares = 0.0, 0.0
    for x in mem.v[1]:
        total, squares = total + x, squares + x * x
    assert squares / 3 - (total / 3) ** 2 < 0.0  # the original would take sqrt of this
    execute(Instr(54, Cell.parse("s5"), (Cell.parse("v1"),)), mem)
    execute(Instr(53, Cell.parse("v5"), (Cell.parse("m1"),)), mem)
    assert value(mem, "s5") == 0.0
    assert same(value(mem, "v5"), [0.0, 0.0, 0.0])


def test_overflow_gives_inf() -> None:
    mem = base_memory()
    mem.s[1] = 1000.0
    _, after = run("s5", 13, ("s1",), mem=mem)
    assert value(after, "s5") == INF


def test_reductions_sum_in_index_order() -> None:
    # 1e16 + 1 - 1e16 depends on the order: left to right it is 0, pairwise/other orders differ.
    mem = Memory.zeros((6, 6, 4), 3)
    mem.v[1] = [1e16, 1.0, -1e16]
    mem.v[2] = [1.0, 1.0, 1.0]
    execute(Instr(27, Cell.parse("s5"), (Cell.parse("v1"), Cell.parse("v2"))), mem)
    execute(Instr(50, Cell.parse("s4"), (Cell.parse("v1"),)), mem)
    assert value(mem, "s5") == 0.0
    assert value(mem, "s4") == 0.0


# ---- aliasing: the whole result is computed before it is stored ---------------------------------


@pytest.mark.parametrize(("code", "out", "ins", "expected"), [
    (31, "v1", ("m1", "v1"), [-3.0, -5.0]),
    (37, "m1", ("m1",), [[1.0, 3.0], [2.0, 4.0]]),
    (43, "m1", ("m1", "m1"), [[7.0, 10.0], [15.0, 22.0]]),
    (28, "m1", ("v1", "v1"), [[1.0, -2.0], [-2.0, 4.0]]),
    (24, "v1", ("v1", "v1"), [0.0, 0.0]),
    (18, "v1", ("s2", "v1"), [-2.0, 4.0]),
    (53, "v1", ("m1",), [0.5, 0.5]),
    (2, "s1", ("s1", "s1"), 0.0),
])
def test_output_may_alias_an_input(code: int, out: str, ins: tuple[str, ...],
                                   expected: Any) -> None:
    _, after = run(out, code, ins)
    assert same(value(after, out), expected)


# ---- random ops -------------------------------------------------------------------------------

RANDOM_CODES = (59, 60, 61, 62, 63, 64)


@pytest.mark.parametrize("code", RANDOM_CODES)
def test_random_op_draws_from_the_counter_stream(code: int) -> None:
    out = {59: "s5", 60: "v5", 61: "m3", 62: "s5", 63: "v5", 64: "m3"}[code]
    key = rng.draw_key(rng.stream(7, 3), 1, 0, 5)
    lits = (2.0, -1.0)  # lo > hi for uniform (still lo + (hi - lo) * u); mean, std for gaussian
    _, after = run(out, code, (), lits, draws=Draws(key))
    got = np.ravel(value(after, out))
    uniform = code <= 61
    draw = rng.uniform01 if uniform else rng.gauss01
    expected = [2.0 + (-1.0 - 2.0) * draw(key, k) if uniform else 2.0 + -1.0 * draw(key, k)
                for k in range(got.size)]
    assert got.tolist() == expected  # coordinate k is counter k, row-major
    if uniform:
        assert ((got > -1.0) & (got <= 2.0)).all()
    # Same key, same numbers; another key, other numbers.
    _, again = run(out, code, (), lits, draws=Draws(key))
    assert same(value(again, out), value(after, out))
    _, other = run(out, code, (), lits, draws=Draws(key + 1))
    assert not np.any(np.ravel(value(other, out)) == got)


def test_gaussian_with_zero_std_is_the_mean() -> None:
    _, after = run("v5", 63, (), (0.25, 0.0), draws=Draws(123))
    assert same(value(after, "v5"), [0.25, 0.25])
