"""Whole searches: determinism, the memo, resume, experiments, segments, migrants, solving.

test_engine checks each child against the definitions."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

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

from azdsl.language.printer import unparse
from azdsl.search.config import Config, parse_config
from azdsl.search.evolve import Search

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


@pytest.mark.parametrize("fec", [True, False])
def test_memo_changes_nothing_but_speed(fec: bool) -> None:
    config = small(fec=replace(small().fec, enabled=fec))
    _, with_memo = run_search(config, 4)
    no_memo = replace(config, fec=replace(config.fec, structural_cache_size=0))
    _, without = run_search(no_memo, 4)
    assert without_times(with_memo.states) == without_times(without.states)


def test_select_and_final_scores_agree_on_every_backend() -> None:
    config = small(budget=replace(small().budget, max_individuals=150, max_experiments=1))
    _, vm = run_search(config, 9, "vm")
    _, interp = run_search(config, 9, "interp")
    assert without_times(vm.states[-1]) == without_times(interp.states[-1])


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
    for until in (7, 60, 61, 300, 10**6):
        spent = search.advance(until)
        assert search.summary().individuals == min(until, 800)
        assert spent == (until >= 800)
    search.finish()
    assert search.final is not None
    assert without_times(search.experiments) == without_times(whole.experiments)
    with pytest.raises(RuntimeError, match="no experiment"):
        search.advance(900)


def test_migrants_replace_the_oldest_members_with_their_ancestry() -> None:
    config = small(budget=replace(small().budget, max_experiments=1))
    donor = Search(config, 9)
    donor.begin(0)
    donor.advance(100)
    migrants = donor.fittest(2)
    assert migrants[0][1] == donor.summary().best >= migrants[1][1]
    search = Search(config, 4)
    search.begin(0)
    search.advance(100)
    oldest = search.state()["current"]["next_slot"]
    search.inject(migrants)
    after = search.state()["current"]
    slots = [(oldest + k) % 60 for k in range(2)]
    assert [(after["programs"][after["slots"][s]], after["fitness"][s]) for s in slots
            ] == [(unparse(p), f) for p, f, _ in migrants]
    assert after["next_slot"] == (oldest + 2) % 60
    for slot, (_, _, ancestry) in zip(slots, migrants, strict=True):
        assert search.engine().ancestry_of(slot) == ancestry
    search.advance(300)
    resumed = Search(config, 4)
    resumed.restore(search.state())
    assert without_times(resumed.state()) == without_times(search.state())


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
