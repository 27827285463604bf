"""The search: population mechanics, pruning, determinism, FEC reuse, memo, resume, solving."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support import (
    SEARCH_TASKS,
    Capture,
    components,
    held_out_tasks,
    population,
    run_search,
    sgd,
    without_times,
)

from azdsl.config import Config, parse_config
from azdsl.evolve import Search
from azdsl.fec import FecCache
from azdsl.liveness import live_mask
from azdsl.mutate import MutationConfig, mutate, random_program
from azdsl.parse import parse
from azdsl.population import Population, Uniforms
from azdsl.printer import unparse
from azdsl.program import Program
from azdsl.prune import Pruner
from azdsl.scorer import BackendEngine, ProbeSize, Scorer, TrainBudget, VmEngine
from azdsl.tasks import TaskSpec, make_collection

SMALL = (
    SEARCH_TASKS
    + held_out_tasks(5)
    + components(5, 2, 5)
    + population(60, 6)
    + """[budget]
max_individuals = 800
max_experiments = 2
[run]
progress_every = 200
checkpoint_every = 150
"""
)


def small(**changes: Any) -> Config:
    return replace(parse_config(SMALL), **changes)


# ---- population mechanics ---------------------------------------------------------------------


def test_constant_fitness_overwrites_cyclically() -> None:
    pop = Population(3)
    programs = [Program(setup=(parse(f"def Setup():\n  s2 = {i}.0\n").setup)) for i in range(9)]
    assert [pop.add(p, 0.5) for p in programs[:3]] == [0, 1, 2]
    assert [pop.add(p, 0.5) for p in programs[3:]] == [0, 1, 2, 0, 1, 2]
    assert pop.programs == programs[6:9]


def test_tournament_takes_highest_and_first_drawn_on_ties() -> None:
    pop = Population(4)
    for f in (0.1, 0.7, 0.7, 0.3):
        pop.add(Program(), f)
    # draws slot = floor(u * 4): 3, 2, 1, 0 -> slots 2 and 1 tie; 2 was drawn first
    assert pop.tournament([0.8, 0.6, 0.3, 0.1]) == 2
    assert pop.tournament([0.3, 0.6]) == 1
    assert pop.tournament([0.0]) == 0  # T = 1: the drawn slot itself


def test_population_size_one_tournament_one() -> None:
    pop = Population(1)
    pop.add(Program(), 0.2)
    assert pop.tournament([0.99]) == 0
    assert pop.add(Program(), 0.9) == 0 and pop.fitness == [0.9]


def test_uniforms_restore_mid_block() -> None:
    uniforms = Uniforms(np.random.default_rng(5), block=8)
    head = [uniforms.next() for _ in range(13)]
    copy = Uniforms.from_state(json.loads(json.dumps(uniforms.state())))
    assert [copy.next() for _ in range(20)] == [uniforms.next() for _ in range(20)]
    fresh = Uniforms(np.random.default_rng(5), block=8)
    assert [fresh.next() for _ in range(13)] == head
    unused = Uniforms.from_state(Uniforms(np.random.default_rng(5), block=8).state())
    assert [unused.next() for _ in range(13)] == head
    taker = Uniforms(np.random.default_rng(5), block=8)
    assert taker.take(3) + taker.take(7) + taker.take(3) == head


# ---- pruning -----------------------------------------------------------------------------------


def test_pruner_agrees_with_liveness_on_random_programs_and_mutants() -> None:
    rng = np.random.default_rng(11)
    cfg = MutationConfig(dim=3, scalars=5, vectors=4, matrices=2, init_sizes=(6, 3, 6),
                         ops=(tuple(range(65)),) * 3,
                         mutation_types=("alter_param", "randomize_instruction",
                                         "insert_instruction", "remove_instruction"))
    pruner = Pruner()
    program = random_program(rng, cfg)
    for _ in range(1500):
        program = mutate(program, rng, cfg)[0] if rng.random() < 0.9 else random_program(
            rng, cfg)
        got = pruner.prune(program)
        mask = live_mask(program)
        expected = tuple(tuple(i for i, live in zip(c, m, strict=True) if live)
                         for c, m in zip(program.components, mask, strict=True))
        assert got.live == expected
        assert got.random == any(i.op.is_random for part in expected for i in part)


def test_pruner_keys_equal_exactly_for_equal_live_code() -> None:
    pruner = Pruner(max_cached=50)  # small: exercises clearing
    a = parse("def Setup():\n  s3 = 0.5\n  s2 = 0.25\ndef Predict():\n  s1 = s2 * s2\n")
    b = parse("def Setup():\n  s2 = 0.25\n  s3 = 0.75\ndef Predict():\n  s1 = s2 * s2\n")
    c = parse("def Setup():\n  s2 = 0.5\ndef Predict():\n  s1 = s2 * s2\n")
    assert pruner.prune(a).key == pruner.prune(b).key != pruner.prune(c).key
    for _ in range(30):
        assert pruner.prune(parse(sgd(0.1))).key != pruner.prune(c).key


# ---- the scorer: FEC only reuses, the memo never changes anything ----------------------------


def _programs(count: int, seed: int) -> list[Program]:
    rng = np.random.default_rng(seed)
    cfg = MutationConfig(dim=4)
    programs = [random_program(rng, cfg) for _ in range(20)]
    while len(programs) < count:
        programs.append(mutate(programs[int(rng.integers(len(programs)))], rng, cfg)[0])
    return programs


def test_fec_changes_a_result_only_by_reusing_a_cached_fitness() -> None:
    tasks = make_collection([TaskSpec(num_tasks=3, num_train=30, num_valid=15)])
    num_train = [len(t.y_train) for t in tasks]
    engine = VmEngine(tasks, ProbeSize(10, 10), (4, 3, 1))
    with_fec = Scorer(engine, num_train, fec=FecCache(), memo_size=0)
    exact = Scorer(engine, num_train, fec=None, memo_size=0)
    inserted: dict[int, float] = {}
    reused = 0
    for n, program in enumerate(_programs(1500, 3)):
        live = Pruner().prune(program).program()
        keys, _ = engine.probe(engine.prepare(live), num_train)
        truth, _ = engine.full(engine.prepare(live), range(3), n)
        before = dict(with_fec.fec._entries)  # type: ignore[union-attr]
        got = with_fec.score(program, n)
        assert exact.score(program, n) == sum(truth) / 3
        per_task = []
        for key, value in zip(keys, truth, strict=True):
            if key in before:  # a hit: the fitness first computed for this key
                per_task.append(before[key][0])
                assert before[key][0] == inserted[key]
                reused += before[key][0] != value
            else:
                per_task.append(value)
                inserted[key] = value
        assert got == sum(per_task) / 3
    assert with_fec.fec.hits > 1000  # type: ignore[union-attr]
    assert reused < 0.05 * with_fec.fec.hits  # type: ignore[union-attr]


@pytest.mark.parametrize("fec", [True, False])
def test_memo_changes_nothing_but_speed(fec: bool) -> None:
    config = small(fec=replace(small().fec, enabled=fec))
    _, with_memo = run_search(config, 4)
    no_memo = replace(config, fec=replace(config.fec, structural_cache_size=0))
    _, without = run_search(no_memo, 4)
    assert without_times(with_memo.states) == without_times(without.states)


def test_interp_and_vm_searches_agree() -> None:
    config = small(budget=replace(small().budget, max_individuals=150, max_experiments=1))
    _, vm = run_search(config, 9, "vm")
    _, interp = run_search(config, 9, "interp")
    assert without_times(vm.states[-1]) == without_times(interp.states[-1])


def test_backend_engine_probe_matches_vm_engine() -> None:
    tasks = make_collection([TaskSpec(num_tasks=3, num_train=30, num_valid=15)])
    vm = VmEngine(tasks, ProbeSize(), (4, 3, 1))
    interp = BackendEngine("interp", tasks, ProbeSize())
    for program in _programs(40, 8):
        live = Pruner().prune(program).program()
        assert vm.probe(vm.prepare(live), [30] * 3) == interp.probe(interp.prepare(live),
                                                                      [30] * 3)
        assert vm.full(vm.prepare(live), [0, 2], 5) == interp.full(live, [0, 2], 5)


def test_train_budget_rejects_costly_programs() -> None:
    baseline = parse(sgd(0.1))
    budget = TrainBudget(baseline, 2.0, [100])
    assert not budget.rejects(baseline)
    costly = parse(sgd(0.1) + "".join("  m0 = m0 @ m0\n" for _ in range(9)))
    assert budget.rejects(costly)
    tasks = make_collection([TaskSpec(num_tasks=1, num_train=100, num_valid=20)])
    scorer = Scorer(VmEngine(tasks, ProbeSize(), (4, 3, 1)), [100], fec=FecCache(),
                    memo_size=10, train_budget=budget)
    assert scorer.score(costly, 0) == 0.0
    assert scorer.score(baseline, 0) > 0.9


# ---- whole searches ------------------------------------------------------------------------


def test_same_seed_same_run_other_seed_other_run() -> None:
    first, a = run_search(small(), 1)
    _, b = run_search(small(), 1)
    _, c = run_search(small(), 2)
    assert without_times(a.states) == without_times(b.states)
    assert without_times(a.records) == without_times(b.records)
    assert without_times(a.states[-1]) != without_times(c.states[-1])
    assert len(first.experiments) == 2 and first.final is not None


def test_resume_from_any_checkpoint_ends_where_the_run_ends() -> None:
    config = small()
    _, whole = run_search(config, 6)
    assert len(whole.states) >= 8
    for state in whole.states[1:-1:3]:
        hooks = Capture()
        search = Search(config, 6, "vm", hooks)
        search.restore(state)
        search.run()
        assert without_times(hooks.states[-1]) == without_times(whole.states[-1])
        assert [r["individuals"] for r in hooks.records] == [
            r["individuals"] for r in whole.records[state["progress_records"]:]]


def test_experiments_use_fresh_task_seeds_and_stop_when_good_enough() -> None:
    _, hooks = run_search(small(), 3)
    first, second = hooks.experiments
    assert first["search_fitness"] != second["search_fitness"] or first["program"] != second[
        "program"]
    enough = small(budget=replace(small().budget, max_experiments=0, sufficient_fitness=0.0))
    _, hooks = run_search(enough, 3)
    assert len(hooks.experiments) == 1  # any select fitness > 0 is enough


def test_random_search_and_empty_start() -> None:
    config = small(method="random",
                   budget=replace(small().budget, max_individuals=300, max_experiments=1))
    search, hooks = run_search(config, 1)
    assert search.final is not None
    best = max(r["best_ever"] for r in hooks.records)
    assert hooks.experiments[0]["search_fitness"] == best
    empty = small(initial_population="empty",
                  budget=replace(small().budget, max_individuals=100, max_experiments=1))
    search, hooks = run_search(empty, 1)
    assert search.final is not None


# ---- an experiment a step at a time (what an island does) -----------------------------------


def test_an_experiment_advanced_in_segments_is_the_one_run_searches() -> None:
    config = small(budget=replace(small().budget, max_experiments=1))
    whole, _ = run_search(config, 4)
    search = Search(config, 4)
    search.begin(0)
    # The Python loop while the population (60) fills, then the compiled loop.
    for until in (7, 60, 61, 300, 10**6):
        spent = search.advance(until)
        assert search.summary().individuals == min(until, 800)
        assert spent == (until >= 800)
    search.finish()
    assert search.final is not None
    assert without_times(search.experiments) == without_times(whole.experiments)
    with pytest.raises(RuntimeError, match="no experiment"):
        search.advance(900)


@pytest.mark.parametrize("long", [False, True])
def test_migrants_replace_the_oldest_members_with_or_without_the_compiled_loop(
        long: bool) -> None:
    """A migrant goes into the compiled loop's arrays or, too long for their rows, into the
    Python objects the loop is then rebuilt from: the search goes on as without a loop."""
    config = small(budget=replace(small().budget, max_experiments=1))
    donor = Search(config, 9)
    donor.begin(0)
    donor.advance(100)
    migrants = donor.fittest(2)
    assert migrants[0][1] == donor.summary().best >= migrants[1][1]
    if long:  # three times the longest setup a member can have
        program, fitness = migrants[0]
        migrants[0] = replace(program, setup=program.setup * 3), fitness
    states = []
    for compiled in (True, False):
        search = Search(config, 4, compiled=compiled)
        search.begin(0)
        search.advance(100)  # the compiled loop is under way only where `compiled`
        oldest = search.state()["current"]["next_slot"]
        search.inject(migrants)
        after = search.state()["current"]
        slots = [(oldest + k) % 60 for k in range(2)]
        assert [(after["programs"][after["slots"][s]], after["fitness"][s]) for s in slots
                ] == [(unparse(p), f) for p, f in migrants]
        assert after["next_slot"] == (oldest + 2) % 60
        search.compiled = True
        search.advance(300)
        states.append(search.state())
    assert without_times(states[0]) == without_times(states[1])


def _solve(tmp_path: Path, seed_program: str, learn_ops: str, setup_ops: str,
           mutations: str, individuals: int) -> tuple[Search, Capture]:
    (tmp_path / "seed.az").write_text(seed_program)
    text = f"""
[search_tasks]
kind = "linear"
dim = 4
num_tasks = 3
num_train = 100
num_valid = 20
[final_tasks]
kind = "linear"
dim = 4
num_tasks = 10
num_train = 100
num_valid = 20
seed = 99
[setup]
ops = {setup_ops}
[predict]
ops = []
[learn]
ops = {learn_ops}
[search]
population_size = 50
tournament_size = 10
initial_population = "seed.az"
mutations = {mutations}
mutate_prob = 1.0
[fec]
enabled = true
[budget]
max_individuals = {individuals}
"""
    return run_search(parse_config(text, base_dir=tmp_path), 1)


def test_evolution_tunes_a_learning_rate(tmp_path: Path) -> None:
    search, _ = _solve(tmp_path, sgd(0.0005), "[]", '["s = c"]',
                       '["alter_param"]', 2000)
    assert search.final is not None and search.final["fitness"] > 0.9999
    lr = search.result().program.setup[0].literals[0]
    assert 0.05 < float(lr) < 2.0
