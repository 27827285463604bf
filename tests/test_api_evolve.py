"""azdsl.evolve from Python: configs in any form, partial hooks, callbacks, stop, extend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support import SEARCH_TASKS, components, held_out_tasks, population, without_times

import azdsl
from azdsl.errors import ConfigError
from azdsl.language.program import Program
from azdsl.search.config import parse_config
from azdsl.search.evolve import STOP, Result, Search, evolve

TEXT = (SEARCH_TASKS + held_out_tasks(3) + components(5, 2, 5) + population(40, 5)
        + "[budget]\nmax_individuals = 400\nmax_experiments = 1\n[run]\nprogress_every = 100\n")


def test_the_top_level_name_is_the_function_and_takes_text_paths_and_configs(
        tmp_path: Path) -> None:
    assert azdsl.evolve is evolve and azdsl.STOP is STOP and azdsl.Search is Search
    path = tmp_path / "small.toml"
    path.write_text(TEXT)
    from_text = azdsl.evolve(TEXT, seed=3)
    from_path = azdsl.evolve(path, seed=3)
    from_str_path = azdsl.evolve(str(path), seed=3)
    assert isinstance(from_text, Result) and from_text.individuals == 400
    assert from_text.program == from_path.program == from_str_path.program
    assert from_text.final_fitness == from_path.final_fitness


def test_settings_override_the_config_and_bad_ones_are_named() -> None:
    result = azdsl.evolve(TEXT, seed=1, max_individuals=120, population_size=30)
    assert result.individuals == 120
    with pytest.raises(ConfigError, match="not a setting"):
        azdsl.evolve(TEXT, seed=1, max_individual=5)
    with pytest.raises(ConfigError, match="population_size"):
        azdsl.evolve(TEXT, seed=1, population_size=-3)
    with pytest.raises(ConfigError, match="tournament_size"):
        azdsl.evolve(TEXT, seed=1, population_size=2)
    with pytest.raises(ConfigError, match="Config, a config file or TOML"):
        azdsl.evolve(42, seed=1)


def test_any_subset_of_hooks_and_plain_callables() -> None:
    class OnlyExperiments:
        def __init__(self) -> None:
            self.seen: list[int] = []

        def experiment(self, record: dict[str, Any]) -> None:
            self.seen.append(record["experiment"])

    hooks = OnlyExperiments()
    progress: list[int] = []
    bests: list[float] = []
    result = azdsl.evolve(TEXT, seed=2, hooks=hooks,
                          on_progress=lambda r: progress.append(r["total_individuals"]),
                          on_best=lambda p, f: bests.append(f))
    assert hooks.seen == [1]
    assert progress[-1] == result.individuals == 400 and progress == sorted(progress)
    assert bests[-1] == result.select_fitness
    # An object with a subset of the methods given to Search directly works too.
    search = Search(parse_config(TEXT), 2,
                    hooks=OnlyExperiments())  # type: ignore[arg-type]
    assert search.run().program == result.program
    with pytest.raises(ConfigError, match="on_best must be callable"):
        azdsl.evolve(TEXT, on_best=3)


def test_a_callback_returning_stop_ends_the_run_with_the_best_so_far() -> None:
    config_text = TEXT.replace("max_individuals = 400", "max_individuals = 100000")
    seen: list[dict[str, Any]] = []

    def stop_early(record: dict[str, Any]) -> object:
        seen.append(record)
        return STOP if record["total_individuals"] >= 300 else None

    result = azdsl.evolve(config_text, seed=4, on_progress=stop_early)
    # Stopped at the next chunk after the request: far below the budget, yet a whole result.
    assert 300 <= result.individuals < 5000
    assert len(result.experiments) == 1 and 0.0 <= result.final_fitness <= 1.0
    assert isinstance(result.program, Program) and result.hall_of_fame
    assert seen[-1]["done"]
    # An object given to Search directly may stop it the same way.
    class Stopper:
        def progress(self, record: dict[str, Any]) -> object:
            return STOP

    stopped = Search(parse_config(config_text), 4, hooks=Stopper()).run()  # type: ignore[arg-type]
    assert stopped.individuals < 5000


def test_stop_between_runs_and_result_before_the_end() -> None:
    search = Search(parse_config(TEXT.replace(
        "max_experiments = 1", "max_experiments = 3")), 5)
    with pytest.raises(RuntimeError, match="has not finished"):
        search.result()
    search.stop()  # before anything ran: the first experiment still scores an individual
    result = search.run()
    assert len(result.experiments) == 1 and result.individuals >= 1


def test_extending_a_finished_run_is_a_longer_run() -> None:
    two = azdsl.evolve(TEXT, seed=6, max_experiments=2)
    one = azdsl.evolve(TEXT, seed=6)
    extended = azdsl.evolve(TEXT, seed=6, resume=one, extend=1)
    assert len(extended.experiments) == 2
    assert without_times(extended.experiments) == without_times(two.experiments)
    assert extended.program == two.program and extended.final_fitness == two.final_fitness
    assert extended.hall_of_fame == two.hall_of_fame
    # The Search handle: extend with a changed budget.
    search = Search(parse_config(TEXT), 6)
    search.run()
    search.extend(2, max_individuals=150)
    longer = search.run()
    assert [e["individuals"] for e in longer.experiments] == [400, 150, 150]
    with pytest.raises(ConfigError, match="only a finished run"):
        Search(parse_config(TEXT), 6).extend(1)
    with pytest.raises(ConfigError, match="set by `experiments`"):
        search.extend(1, max_experiments=9)
    # Resuming a finished run without extend gives its result again.
    again = azdsl.evolve(TEXT, seed=6, resume=one)
    assert again.program == one.program and again.individuals == one.individuals
