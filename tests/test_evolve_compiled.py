"""The compiled search's pieces and whole runs: lowering, every feature, resume, the memo."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from support import ALL_OPS, Capture, without_times
from test_engine import TEXT, _check_children
from test_evolve import SMALL

from azdsl.language.liveness import live_mask
from azdsl.language.program import Program
from azdsl.language.rows import encode
from azdsl.language.simplify import simplify
from azdsl.running import vm
from azdsl.search.config import Config, Hurdles, parse_config
from azdsl.search.evolve import Search
from azdsl.search.kernel import prune_lower
from azdsl.search.mutate import MutationConfig, op_tables, random_program


def test_compiled_pruning_and_lowering_match_liveness_and_the_vm() -> None:
    t = op_tables()
    partial, random_ops, nlit, littype = t[7], t[8], t[3], t[6]
    cfg = MutationConfig(dim=3, scalars=5, vectors=4, matrices=2, ops=(ALL_OPS,) * 3,
                         init_sizes=(6, 3, 6))
    sizes, dim = (5, 4, 2), 3
    generator = np.random.default_rng(3)
    rows, lits, n = np.zeros((20, 4), dtype=np.int64), np.zeros((20, 3)), np.zeros(
        3, dtype=np.int64)
    flags = np.zeros(20, dtype=np.bool_)
    live_scratch, canon = np.zeros((4, 11), dtype=np.bool_), np.zeros(11, dtype=np.int64)
    out_ints, out_floats = np.zeros(20 * vm.ROW, dtype=np.int64), np.zeros(20 * vm.FLOAT_ROW)
    bounds, key = np.zeros(4, dtype=np.int64), np.zeros(2, dtype=np.uint64)
    keys = {}
    for _ in range(600):
        program = random_program(generator, cfg)
        encode(program, rows, lits, n)
        random = prune_lower(
            rows, lits, n, flags, live_scratch, canon, partial, random_ops, nlit, littype,
            np.array([0, 5, 9]), np.array([0, 5, 5 + 4 * dim]), np.array([1, dim, dim * dim]),
            vm.ROW, vm.FLOAT_ROW, out_ints, out_floats, bounds, key)
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


def _hurdles(c: Config) -> Config:
    """Hurdles on the first of the search tasks, passing half the window after 30 children."""
    return replace(c, hurdles=Hurdles(enabled=True, tasks=1, percentile=50.0, warmup=30))


def _random(c: Config) -> Config:
    return replace(c, method="random")


@pytest.mark.parametrize("change", [lambda c: c, _random, _hurdles])
def test_every_mutation_random_ops_and_a_train_budget_child_by_child(
    tmp_path: Path, change: Callable[[Config], Config],
) -> None:
    (tmp_path / "base.az").write_text("def Setup():\n  s2 = 0.1\ndef Predict():\n"
                                      "  s1 = dot(v0, v1)\ndef Learn():\n  v1 = s0 * v0\n")
    text = TEXT.replace('ops = ["s = c"', 'ops = ["s = gaussian(mean, std)", '
                        '"v = uniform(lo, hi)", "m = m @ m", "s = c"', 1)
    text = text.replace("[search]\n", '[search]\nmutations = ["alter_param", '
                        '"randomize_instruction", "randomize_component", "insert_instruction", '
                        '"remove_instruction", "trade_instruction", "randomize_algorithm", '
                        '"identity"]\nmutate_prob = 0.95\n')
    text = text.replace("\nsize = 5\n", "\ninit_size = 4\nmin_size = 2\nmax_size = 7\n")
    text += '[train_budget]\nbaseline = "base.az"\nthreshold_factor = 3.0\n'
    _check_children(change(parse_config(text, base_dir=tmp_path)), 8, 120)


@pytest.mark.parametrize("change", [lambda c: c, _random, _hurdles])
def test_a_run_resumes_exactly_from_its_checkpoints(change: Callable[[Config], Config]) -> None:
    config = change(parse_config(SMALL))
    whole = Capture()
    Search(config, 12, "vm", whole).run()
    for state in whole.states[2:-1:4]:
        hooks = Capture()
        search = Search(config, 12, "vm", hooks)
        search.restore(json.loads(json.dumps(state)))
        search.run()
        assert without_times(hooks.states[-1]) == without_times(whole.states[-1])
        assert without_times(hooks.experiments) == without_times(
            whole.experiments[len(state["experiments"]):])


@pytest.mark.parametrize("change", [lambda c: c, _hurdles])
def test_structural_memo_size_0_is_off_and_the_memo_changes_no_result(
        change: Callable[[Config], Config]) -> None:
    runs = []
    for text in (SMALL.replace("[fec]\n", "[fec]\nstructural_cache_size = 0\n", 1), SMALL):
        hooks = Capture()
        Search(change(parse_config(text)), 5, "vm", hooks).run()
        runs.append(hooks)
    off, on = runs
    assert [r["memo_hits"] for r in off.records] == [0] * len(off.records)
    assert on.records[-1]["memo_hits"] > 0
    assert without_times(off.records) == without_times(on.records)
    assert without_times(off.states) == without_times(on.states)
