"""The compiled search loop (searchkernel, searchfast) against the Python definition."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support import ALL_OPS, Capture, without_times
from test_evolve import SMALL

from azdsl import vm
from azdsl.config import Config, Hurdles, parse_config
from azdsl.evolve import Search
from azdsl.fec import FecCache
from azdsl.hurdles import Hurdle
from azdsl.liveness import live_mask
from azdsl.mutate import MUTATION_TYPES, MutationConfig, mutate, random_program
from azdsl.program import Program
from azdsl.searchfast import (
    decode,
    encode,
    export_hurdle,
    hurdle_arrays,
    op_tables,
    pcg_to_array,
    pcg_to_state,
)
from azdsl.searchkernel import (
    F_CAP,
    F_FORGET,
    F_HEAD,
    F_HITS,
    F_MISSES,
    F_TAIL,
    fec_export,
    fec_insert,
    fec_lookup,
    hurdle_passes,
    mutate_into,
    pcg_double,
    prune_lower,
    random_into,
)
from azdsl.simplify import simplify


def test_pcg64_is_numpys() -> None:
    generator = np.random.Generator(np.random.PCG64(2024))
    generator.random(7)
    state = pcg_to_array(dict(generator.bit_generator.state))
    assert [pcg_double(state) for _ in range(500)] == generator.random(500).tolist()
    assert pcg_to_state(state) == dict(generator.bit_generator.state)


def _tables(cfg: MutationConfig) -> tuple[object, ...]:
    width = max(1, *(len(o) for o in cfg.ops))
    allowed = np.zeros((3, width), dtype=np.int64)
    for c, codes in enumerate(cfg.ops):
        allowed[c, : len(codes)] = codes
    return (np.array([cfg.scalars, cfg.vectors, cfg.matrices]), allowed,
            np.array([len(o) for o in cfg.ops]),
            np.array([c for c in range(3) if cfg.ops[c]], dtype=np.int64),
            np.array([MUTATION_TYPES.index(m) for m in cfg.mutation_types], dtype=np.int64),
            np.array(cfg.min_sizes), np.array(cfg.max_sizes), cfg.dim, float(cfg.mutate_prob))


MUTATION_CONFIGS = [
    MutationConfig(),
    MutationConfig(dim=3, scalars=5, vectors=4, matrices=2, ops=(ALL_OPS,) * 3,
                   init_sizes=(4, 3, 5), min_sizes=(1, 1, 1), max_sizes=(8, 6, 9),
                   mutation_types=MUTATION_TYPES, mutate_prob=0.8),
    MutationConfig(dim=4, ops=((56, 63, 64), (), ALL_OPS[1:]), init_sizes=(3, 2, 4),
                   min_sizes=(2, 0, 0), max_sizes=(5, 3, 6), mutation_types=MUTATION_TYPES,
                   mutate_prob=1.0),
    MutationConfig(ops=((), (), ()), mutation_types=("identity", "alter_param",
                                                     "randomize_algorithm")),
]


@pytest.mark.parametrize("cfg", MUTATION_CONFIGS)
def test_compiled_mutation_is_mutate_draw_for_draw(cfg: MutationConfig) -> None:
    t = op_tables()
    g = _tables(cfg)
    generator = np.random.default_rng(7)
    program = random_program(generator, cfg)
    cap = sum(cfg.max_sizes) + 2
    rows, lits, n = np.zeros((cap, 4), dtype=np.int64), np.zeros((cap, 3)), np.zeros(
        3, dtype=np.int64)
    buf, pos = np.zeros(16), np.zeros(2, dtype=np.int64)
    for _ in range(1500):
        encode(program, rows, lits, n)
        state = pcg_to_array(dict(generator.bit_generator.state))
        child, _ = mutate(program, generator, cfg)
        mutate_into(rows, lits, n, state, buf, pos, t["out"], t["arity"], t["ins"], t["nlit"],
                    t["init"], t["mut"], t["alter"], t["nalter"], *g)
        assert decode(rows, lits, n) == child
        assert pcg_to_state(state) == dict(generator.bit_generator.state)
        program = child if generator.random() < 0.95 else random_program(generator, cfg)


@pytest.mark.parametrize("cfg", MUTATION_CONFIGS)
def test_compiled_random_program_is_random_program_draw_for_draw(cfg: MutationConfig) -> None:
    t = op_tables()
    mem, allowed, n_allowed, *_ = _tables(cfg)
    generator = np.random.default_rng(11)
    cap = sum(cfg.init_sizes)
    rows, lits, n = np.zeros((cap, 4), dtype=np.int64), np.zeros((cap, 3)), np.zeros(
        3, dtype=np.int64)
    buf, pos = np.zeros(16), np.zeros(2, dtype=np.int64)
    for _ in range(300):
        state = pcg_to_array(dict(generator.bit_generator.state))
        expected = random_program(generator, cfg)
        random_into(rows, lits, n, state, buf, pos, t["out"], t["arity"], t["ins"], t["nlit"],
                    t["init"], mem, allowed, n_allowed, np.array(cfg.init_sizes), cfg.dim)
        assert decode(rows, lits, n) == expected
        assert pcg_to_state(state) == dict(generator.bit_generator.state)


def test_compiled_hurdle_is_hurdle() -> None:
    """The window through warm-up, ties, NaNs (the floor) and turning over, then written back
    and loaded again midway."""
    generator = np.random.default_rng(4)
    values = [float(v) for v in generator.choice([0.0, 0.2, 0.5, 0.7, 0.9, math.nan], 400)]
    values += generator.random(400).tolist()
    reference = Hurdle(2, 60.0, warmup=4, window=7)
    twin = Hurdle(2, 60.0, warmup=4, window=7)
    arrays = hurdle_arrays(twin)
    _, _, percentile, warmup, order, ordered, ints = arrays
    for i, value in enumerate(values):
        assert hurdle_passes(value, percentile, warmup, order, ordered, ints) == \
            reference.passes(value)
        if i % 97 == 0:
            export_hurdle(arrays, twin)
            assert twin.state() == reference.state()
            arrays = hurdle_arrays(twin)
            _, _, percentile, warmup, order, ordered, ints = arrays
    export_hurdle(arrays, twin)
    assert twin.state() == reference.state() and reference.stopped > 100


def test_compiled_pruning_and_lowering_match_liveness_and_the_vm() -> None:
    t = op_tables()
    cfg = MutationConfig(dim=3, scalars=5, vectors=4, matrices=2, ops=(ALL_OPS,) * 3,
                         init_sizes=(6, 3, 6))
    sizes, dim = (5, 4, 2), 3
    generator = np.random.default_rng(3)
    rows, lits, n = np.zeros((20, 4), dtype=np.int64), np.zeros((20, 3)), np.zeros(
        3, dtype=np.int64)
    flags = np.zeros(20, dtype=np.int64)
    out_ints, out_floats = np.zeros(20 * vm.ROW, dtype=np.int64), np.zeros(20 * vm.FLOAT_ROW)
    bounds, key = np.zeros(4, dtype=np.int64), np.zeros(2, dtype=np.uint64)
    keys = {}
    for _ in range(600):
        program = random_program(generator, cfg)
        encode(program, rows, lits, n)
        random = prune_lower(
            rows, lits, n, flags, t["partial"], t["random"], t["nlit"], t["littype"],
            np.array([0, 5, 9]), np.uint64(~(1 | 1 << 5) & (2**64 - 1)), np.uint64(2),
            np.array([0, 5, 5 + 4 * dim]), np.array([1, dim, dim * dim]), vm.ROW,
            vm.FLOAT_ROW, out_ints, out_floats, bounds, key)
        mask = live_mask(program)
        live = Program(*(tuple(i for i, f in zip(c, m, strict=True) if f)
                         for c, m in zip(program.components, mask, strict=True)))
        low = vm.lower(live, sizes, dim, all_live=True)
        count = int(bounds[3])
        assert tuple(int(b) for b in bounds) == low.bounds
        assert out_ints[: count * vm.ROW].tolist() == low.ints.tolist()
        assert out_floats[: count * vm.FLOAT_ROW].tolist() == low.floats.tolist()
        assert random == any(i.op.is_random for i in live.instructions())
        simple = simplify(program)
        found = keys.setdefault((int(key[0]), int(key[1])), simple)
        assert found == simple  # equal keys only for equal simplified programs


def test_compiled_fec_table_is_fec_cache() -> None:
    size, forget = 30, 4
    cap = size + 1
    keys, fit, served = np.zeros(cap, dtype=np.uint64), np.zeros(cap), np.zeros(cap, np.int64)
    prev, nxt = np.full(cap, -1, dtype=np.int64), np.append(np.arange(1, cap), -1)
    bnext, buckets = np.full(cap, -1, dtype=np.int64), np.full(64, -1, dtype=np.int64)
    ints = np.zeros(8, dtype=np.int64)
    ints[F_HEAD] = ints[F_TAIL] = -1
    reference = FecCache(size, forget)
    ints[F_CAP], ints[F_FORGET] = size, reference.max_hits
    generator = np.random.default_rng(1)
    for _ in range(3000):
        key = int(generator.integers(0, 60)) * 0x9E3779B97F4A7C15 % 2**64
        got = fec_lookup(np.uint64(key), keys, fit, served, prev, nxt, bnext, buckets, ints)
        expected = reference.lookup(key)
        assert (expected is None and math.isnan(got)) or got == expected
        if expected is None:
            value = float(generator.random())
            reference.insert(key, value)
            fec_insert(np.uint64(key), value, 0, keys, fit, served, prev, nxt, bnext, buckets,
                       ints)
    count = int(ints[0])
    out = np.zeros(count, dtype=np.uint64), np.zeros(count), np.zeros(count, dtype=np.int64)
    fec_export(keys, fit, served, nxt, ints, *out)
    state = reference.state()
    assert [int(k) for k in out[0]] == state["keys"]
    assert out[1].tolist() == state["fitness"] and out[2].tolist() == state["served"]
    assert (int(ints[F_HITS]), int(ints[F_MISSES])) == (reference.hits, reference.misses)


def _both(config: Config, seed: int) -> tuple[Capture, Capture]:
    results = []
    for compiled in (False, True):
        hooks = Capture()
        search = Search(config, seed, "vm", hooks)
        search.compiled = compiled
        search.run()
        results.append(hooks)
    return results[0], results[1]


def _fec(**changes: Any) -> Callable[[Config], Config]:
    return lambda c: replace(c, fec=replace(c.fec, **changes))


def _random(c: Config) -> Config:
    return replace(c, method="random")


def _hurdles(c: Config) -> Config:
    """Hurdles on the first of the search tasks, passing half the window after 30 children."""
    return replace(c, hurdles=Hurdles(enabled=True, tasks=1, percentile=50.0, warmup=30))


@pytest.mark.parametrize("change", [
    lambda c: c,
    _fec(enabled=False),
    _fec(forget_every=3, cache_size=50),
    lambda c: replace(c, combine="median"),
    _random,
    lambda c: _random(_fec(enabled=False)(c)),
    _hurdles,
    lambda c: _hurdles(_fec(enabled=False)(c)),
    lambda c: _hurdles(_fec(forget_every=3, cache_size=50)(c)),
    lambda c: _hurdles(replace(c, combine="median")),
    lambda c: _hurdles(_random(c)),
])
def test_compiled_search_is_the_python_search(change: Callable[[Config], Config]) -> None:
    config = change(parse_config(SMALL))
    python, compiled = _both(config, 5)
    assert without_times(python.states) == without_times(compiled.states)
    assert without_times(python.records) == without_times(compiled.records)
    assert (compiled.records[-1]["hurdle_stopped"] > 0) == config.hurdles.enabled


@pytest.mark.parametrize("change", [lambda c: c, _random, _hurdles])
def test_compiled_search_with_every_mutation_random_ops_and_a_train_budget(
    tmp_path: Path, change: Callable[[Config], Config],
) -> None:
    (tmp_path / "base.az").write_text("def Setup():\n  s2 = 0.1\ndef Predict():\n"
                                      "  s1 = dot(v0, v1)\ndef Learn():\n  v1 = s0 * v0\n")
    text = SMALL.replace('ops = ["s = c"', 'ops = ["s = gaussian(mean, std)", '
                         '"v = uniform(lo, hi)", "m = m @ m", "s = c"', 1)
    text = text.replace("[search]\n", '[search]\nmutations = ["alter_param", '
                        '"randomize_instruction", "randomize_component", "insert_instruction", '
                        '"remove_instruction", "trade_instruction", "randomize_algorithm", '
                        '"identity"]\nmutate_prob = 0.95\n')
    text = text.replace("size = 5\n", "init_size = 4\nmin_size = 2\nmax_size = 7\n")
    text += '[train_budget]\nbaseline = "base.az"\nthreshold_factor = 3.0\n'
    python, compiled = _both(change(parse_config(text, base_dir=tmp_path)), 8)
    assert without_times(python.states) == without_times(compiled.states)


@pytest.mark.parametrize("change", [lambda c: c, _random, _hurdles])
def test_compiled_search_resumes_exactly(change: Callable[[Config], Config]) -> None:
    config = change(parse_config(SMALL))
    whole = Capture()
    Search(config, 12, "vm", whole).run()
    for state in whole.states[2:-1:4]:
        hooks = Capture()
        search = Search(config, 12, "vm", hooks)
        search.restore(json.loads(json.dumps(state)))
        search.run()
        assert without_times(hooks.states[-1]) == without_times(whole.states[-1])


@pytest.mark.parametrize("change", [lambda c: c, _random, _hurdles])
def test_the_compiled_loop_serves_evolution_random_search_and_hurdles(
        change: Callable[[Config], Config]) -> None:
    search = Search(change(parse_config(SMALL)), 1, "vm")
    search.begin(0)
    search.advance(100)  # past the initial population (60)
    assert search._current is not None and search._current.fast is not None


@pytest.mark.parametrize("change", [lambda c: c, _hurdles])
@pytest.mark.parametrize("compiled", [False, True])
def test_structural_memo_size_0_is_off_and_the_memo_changes_no_result(
        compiled: bool, change: Callable[[Config], Config]) -> None:
    runs = []
    for text in (SMALL.replace("[fec]\n", "[fec]\nstructural_cache_size = 0\n", 1), SMALL):
        hooks = Capture()
        search = Search(change(parse_config(text)), 5, "vm", hooks)
        search.compiled = compiled
        search.run()
        runs.append(hooks)
    off, on = runs
    assert [r["memo_hits"] for r in off.records] == [0] * len(off.records)
    assert on.records[-1]["memo_hits"] > 0
    assert without_times(off.records) == without_times(on.records)
    assert without_times(off.states) == without_times(on.states)
