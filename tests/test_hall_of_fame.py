"""The hall of fame: distinct best programs on the Result and in the run folder, the front."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import (
    SEARCH_TASKS,
    components,
    evolved_run_folder,
    held_out_tasks,
    population,
    without_times,
)

import azdsl
from azdsl import state as st
from azdsl.language.parse import parse
from azdsl.language.simplify import canonical_key, live_parts
from azdsl.search import hall_of_fame as hof
from azdsl.search.config import parse_config
from azdsl.search.evolve import Search

TEXT = (SEARCH_TASKS + held_out_tasks(3) + components(5, 2, 5) + population(40, 5)
        + "[budget]\nmax_individuals = 500\nmax_experiments = 2\n[run]\nprogress_every = 250\n")


def test_the_hall_of_fame_holds_the_best_distinct_programs() -> None:
    result = azdsl.evolve(TEXT, seed=11, hall_of_fame=6)
    fame = result.hall_of_fame
    assert 1 <= len(fame) <= 6
    keys = [canonical_key(e.program) for e in fame]
    assert len(set(keys)) == len(keys)
    assert [e.rank() for e in fame] == sorted(e.rank() for e in fame)
    for e in fame:
        assert e.size == sum(len(part) for part in live_parts(e.program))
        assert 1 <= e.experiment <= 2 and 0 <= e.individual < 500
    # Every experiment's candidate (its best member) is matched or beaten by the first entry.
    assert fame[0].fitness >= max(r["search_fitness"] for r in result.experiments)
    assert result.state["hall_of_fame"] == [e.to_json() for e in fame]


def test_the_search_is_the_same_whatever_the_hall_of_fame_keeps() -> None:
    small = azdsl.evolve(TEXT, seed=12, hall_of_fame=1)
    large = azdsl.evolve(TEXT, seed=12, hall_of_fame=20)
    assert without_times(small.experiments) == without_times(large.experiments)
    assert small.final_fitness == large.final_fitness and len(small.hall_of_fame) == 1
    assert small.hall_of_fame[0] == large.hall_of_fame[0]


def test_the_front_is_the_non_dominated_entries() -> None:
    program = parse("def Predict():\n  s1 = dot(v0, v1)\n")
    entries = [hof.Entry(program, f, size, 1, i)
               for i, (f, size) in enumerate([(0.9, 5), (0.95, 9), (0.8, 3), (0.85, 6),
                                              (0.95, 12), (0.7, 3)])]
    front = hof.pareto_front(entries)
    assert [(e.fitness, e.size) for e in front] == [(0.8, 3), (0.9, 5), (0.95, 9)]
    for e in entries:
        if e not in front:  # dominated: some front entry is as small and as fit
            assert any(f.size <= e.size and f.fitness >= e.fitness for f in front)
    assert azdsl.pareto_front is hof.pareto_front


def test_merge_keeps_the_better_of_equal_programs_and_is_idempotent() -> None:
    a = parse("def Predict():\n  s1 = dot(v0, v1)\n")
    same = parse("def Predict():\n  s2 = s0 * s0\n  s1 = dot(v0, v1)\n")  # a dead line more
    b = parse("def Predict():\n  s1 = dot(v0, v0)\n")
    entries = [hof.entry(a, 0.5, 2, 7), hof.entry(same, 0.6, 1, 3), hof.entry(b, 0.55, 1, 1)]
    merged = hof.merge(entries, 5)
    assert [(e.fitness, e.experiment) for e in merged] == [(0.6, 1), (0.55, 1)]
    assert merged[0].size == 1
    assert hof.merge([*merged, *entries], 5) == merged
    assert hof.merge(entries, 1) == merged[:1]


def test_the_run_folder_keeps_it_and_the_report_prints_the_front(tmp_path: Path) -> None:
    out = evolved_run_folder(tmp_path, TEXT, 13)
    document = json.loads((out / "hall_of_fame.json").read_text())
    assert (document["format"], document["version"]) == ("azdsl-hall-of-fame", 1)
    expected = azdsl.evolve(TEXT, seed=13).hall_of_fame
    assert [e["program"] for e in document["programs"]] == [
        azdsl.unparse(e.program) for e in expected]
    assert document["front"] == [e.to_json() for e in hof.pareto_front(expected)]
    report = json.loads((out / "report.json").read_text())
    assert report["front"] == document["front"]
    if len(document["front"]) > 1:
        assert "fitness-vs-size front" in (out / "report.txt").read_text()
    # A resumed run carries its hall of fame in the checkpoint.
    checkpoint = json.loads((out / "checkpoint.json").read_text())["state"]
    assert checkpoint["hall_of_fame"] == document["programs"]


def test_a_checkpoint_s_hall_of_fame_is_checked_as_user_input() -> None:
    config = parse_config(TEXT)
    search = Search(config, 14)
    search.run()
    state = json.loads(json.dumps(search.state()))
    entry = state["hall_of_fame"][0]
    entry["size"] += 1
    with pytest.raises(st.StateError, match="live size"):
        Search(config, 14).restore(state)
    entry["size"] -= 1
    entry["program"] = "def Predict():\n  s1 = dot(v0, v9)\n"  # a cell this run lacks
    with pytest.raises(st.StateError, match=r"hall_of_fame\[0\]\.program"):
        Search(config, 14).restore(state)
    del state["hall_of_fame"]  # a state from before the hall of fame
    restored = Search(config, 14)
    restored.restore(state)
    assert restored.hall_of_fame() == []
