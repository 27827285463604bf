"""The search engine a child at a time, against a reference written here from the definitions.

Each child of a compiled search is checked as it is made: the tournament's winner (the slots
its stream draws, the fittest first drawn), the program (an initial program, random search's
fresh one, or the winner mutated with the child's stream: test_mutate holds that mutation to
the Program-level oracle), the slot it replaces, its fitness (evaluated on the reference
interpreter, with the FEC cache (tests/oracle.py's LRU), the train budget and the hurdles
applied by the rules of docs/search.md), and its lineage row. The loop also runs as plain
Python, to the same result.
"""

from __future__ import annotations

import math
import types
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numba.core.registry import CPUDispatcher
from oracle import FecLru, probe_hash
from support import SEARCH_TASKS, components, held_out_tasks, population, sgd, without_times

from azdsl.language.parse import parse
from azdsl.language.program import Program
from azdsl.running import rng
from azdsl.running.evaluate import evaluate
from azdsl.search.config import Config, Hurdles, parse_config, read_config
from azdsl.search.engine import budget_limits
from azdsl.search.evolve import Search
from azdsl.search.fec import PROBE_SEED, max_hits
from azdsl.search.lineage import replay
from azdsl.search.mutate import mutate_with_key, random_program_from_key

SIZE = 30
TEXT = (SEARCH_TASKS + held_out_tasks(3) + components(5, 2, 5) + population(SIZE, 5)
        + "[budget]\nmax_individuals = 400\nmax_experiments = 1\n")


def config(**changes: Any) -> Config:
    return replace(parse_config(TEXT), **changes)


class ReferenceHurdle:
    """The hurdle by its definition: the lower nearest rank of the last `window` partial
    fitnesses (NaN recorded as 0), everyone passing during the warm-up."""

    def __init__(self, percentile: float, warmup: int, window: int) -> None:
        self.percentile, self.warmup, self.window = percentile, warmup, window
        self.values: list[float] = []
        self.recorded = 0

    def passes(self, partial: float) -> bool:
        ordered = sorted(self.values)
        ok = (self.recorded < self.warmup or not ordered
              or partial >= ordered[math.floor(self.percentile / 100 * (len(ordered) - 1))])
        self.values = [*self.values, partial if partial == partial else 0.0][-self.window:]
        self.recorded += 1
        return ok


class Reference:
    """The fitness of each child by the definitions, on the reference interpreter."""

    def __init__(self, cfg: Config, search: Search) -> None:
        self.cfg = cfg
        self.tasks = search.tasks(0)[0]
        self.fec = (FecLru(cfg.fec.cache_size, max_hits(cfg.fec.forget_every))
                    if cfg.fec.enabled else None)
        h = cfg.hurdles
        self.hurdle = ReferenceHurdle(h.percentile, h.warmup or SIZE, SIZE) if h.enabled else None
        self.limits = None
        if cfg.train_budget is not None:
            self.limits = budget_limits(search.baseline, cfg.train_budget.threshold_factor,
                                        [len(t.y_train) for t in self.tasks])

    def _rejected(self, program: Program) -> bool:
        if self.limits is None:
            return False
        setup, predict, learn = (sum(i.op.cost for i in c) for c in program.components)
        return any(setup + len(t.y_train) * (predict + learn) > limit
                   for t, limit in zip(self.tasks, self.limits, strict=True))

    def _keys(self, program: Program, rejected: bool) -> list[int]:
        fec = self.cfg.fec
        probe = evaluate(program, self.tasks, seed=PROBE_SEED, max_abs_error=self.cfg.max_abs_error,
                         num_train=fec.num_train, num_valid=fec.num_valid, epochs=1,
                         record=fec.num_train + fec.num_valid)
        keys = []
        for task, outcome in zip(self.tasks, probe.outcomes, strict=True):
            split = outcome.train_recorded
            errors = outcome.errors.tolist()
            keys.append(probe_hash(errors[:split], errors[split:split + outcome.valid_recorded],
                                   task.index, 0 if rejected else len(task.y_train)))
        return keys

    def fitness(self, program: Program, seed: int) -> float:
        n = len(self.tasks)
        rejected = self._rejected(program)
        exact = [0.0] * n if rejected else list(evaluate(
            program, self.tasks, seed=seed, max_abs_error=self.cfg.max_abs_error).task_fitness)
        keys = self._keys(program, rejected) if self.fec is not None else []
        per_task = [0.0] * n
        phases = [range(n)]
        if self.hurdle is not None:
            phases = [range(self.cfg.hurdles.tasks), range(self.cfg.hurdles.tasks, n)]
        for phase, tasks in enumerate(phases):
            missing = []
            for t in tasks:
                cached = self.fec.lookup(keys[t]) if self.fec is not None else None
                if cached is None:
                    missing.append(t)
                else:
                    per_task[t] = cached
            for t in missing:
                per_task[t] = exact[t]
                if self.fec is not None:
                    self.fec.insert(keys[t], exact[t])
            if self.hurdle is not None and phase == 0:
                done = tasks.stop
                if not self.hurdle.passes(sum(per_task[:done]) / done):
                    break
        return sum(per_task) / n


def _tournament(fitness: list[float], key: int, size: int) -> int:
    best = -1
    for j in range(size):
        slot = int(rng.uniform01(key, j) * len(fitness))
        if best < 0 or fitness[slot] > fitness[best]:
            best = slot
    return best


def _check_children(cfg: Config, seed: int, children: int) -> Search:
    """Run `children` children one call at a time, each checked against the reference."""
    search = Search(cfg, seed)
    search.begin(0)
    engine = search.engine()
    reference = Reference(cfg, search)
    keys = engine.keys
    for k in range(children):
        members, fitness = engine.members(), engine.fitness()
        filled, oldest = engine.filled, engine.next_slot
        search.advance(k + 1)
        if k < SIZE:
            parent = -1
            expected = random_program_from_key(rng.stream(keys.init, k), search.mutation)
            slot = filled
        elif cfg.method == "random":
            parent = -1
            expected = random_program_from_key(rng.stream(keys.mutation, k), search.mutation)
            slot = oldest
        else:
            parent = _tournament(fitness, rng.stream(keys.tournament, k), cfg.tournament_size)
            expected, record = mutate_with_key(members[parent], rng.stream(keys.mutation, k),
                                               search.mutation)
            slot = oldest
        assert engine.member(slot) == expected, k
        assert engine.fitness()[slot] == reference.fitness(expected, keys.evaluation + k), k
        last = engine.ancestry_of(slot).steps[-1]
        assert (last.individual, last.id, last.fitness) == (k, k, engine.fitness()[slot])
        if parent >= 0:
            assert (last.mutation, last.component, last.position) == tuple(record)
            before = members[parent]
            assert engine.ancestry_of(slot).steps[-2].individual <= k - 1
            assert replay(before, replace(engine.ancestry_of(slot), steps=engine.ancestry_of(
                slot).steps[-2:]), search.mutation)[-1] == expected
    return search


def test_each_child_is_the_tournament_the_mutation_and_its_evaluation() -> None:
    _check_children(config(fec=replace(config().fec, enabled=False)), 5, 150)


def test_each_child_with_fec_reuses_exactly_what_the_cache_holds() -> None:
    search = _check_children(config(fec=replace(config().fec, forget_every=5)), 6, 200)
    hits, misses, _, _ = search.engine().counts()
    assert hits > 50 and misses > 50


def test_each_child_with_hurdles_and_random_search() -> None:
    hurdles = Hurdles(enabled=True, tasks=1, percentile=50.0, warmup=0)
    search = _check_children(config(hurdles=hurdles), 7, 150)
    assert search.engine().counts()[3] > 10  # some children stopped at the hurdle
    _check_children(config(method="random", fec=replace(config().fec, enabled=False)), 8, 90)


def test_each_child_under_a_train_budget(tmp_path: Path) -> None:
    """Learn's 5 random instructions cost more than 1.2 x the SGD baseline's 4 (Predict's 2
    against 1), so many children train on no example and score 0."""
    (tmp_path / "base.az").write_text(sgd(0.1))
    text = TEXT + '[train_budget]\nbaseline = "base.az"\nthreshold_factor = 1.2\n'
    search = _check_children(parse_config(text, base_dir=tmp_path), 9, 120)
    assert 0.0 in search.engine().fitness()


def test_the_best_programs_ancestry_replays_to_it() -> None:
    cfg = config(budget=replace(config().budget, max_individuals=3000))
    search = Search(cfg, 11)
    search.begin(0)
    search.advance(3000)
    standing = search.summary(ancestry=True)
    assert standing.candidate is not None and standing.candidate_ancestry is not None
    steps = standing.candidate_ancestry.steps
    assert steps[0].mutation == "initial" and len(steps) > 5
    assert [s.parent for s in steps[1:]] == [s.id for s in steps[:-1]]
    assert standing.candidate_first is not None
    chain = replay(standing.candidate_first, standing.candidate_ancestry, search.mutation)
    assert chain[-1] == standing.candidate[0]
    assert steps[-1].fitness == standing.candidate[1]


def test_the_loop_runs_as_plain_python_to_the_same_result() -> None:
    cfg = config(budget=replace(config().budget, max_individuals=80),
                 hurdles=Hurdles(enabled=True, tasks=1, percentile=50.0, warmup=0))
    compiled = Search(cfg, 3)
    compiled.begin(0)
    compiled.advance(80)
    plain = Search(cfg, 3)
    plain.begin(0)
    engine = plain.engine()
    module = engine.module
    keep = {module.evaluate_batch}  # the VM: a backend of its own, held equal elsewhere
    engine.module = types.SimpleNamespace(**{**vars(module),
                                             "run_chunk": as_python(module.run_chunk, keep)})
    with warnings.catch_warnings(), np.errstate(over="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # uint64 arithmetic wraps on purpose
        plain.advance(80)
    assert without_times(plain.state()) == without_times(compiled.state())


def as_python(function: Any, keep: set[Any]) -> Any:
    """A Numba function as the plain Python it was written as, calling the plain Python of
    every Numba function it reaches (but those in `keep`)."""
    copies: dict[int, dict[str, Any]] = {}

    def plain(obj: Any) -> Any:
        if not isinstance(obj, CPUDispatcher) or obj in keep:
            return obj
        py = obj.py_func
        namespace = copies.get(id(py.__globals__))
        if namespace is None:
            namespace = copies[id(py.__globals__)] = dict(py.__globals__)
            for name, value in py.__globals__.items():
                namespace[name] = plain(value)
        return types.FunctionType(py.__code__, namespace, py.__name__, py.__defaults__,
                                  py.__closure__)

    return plain(function)


@pytest.mark.parametrize("cfg", [config(), config(method="random")])
def test_a_search_resumes_exactly_from_any_point(cfg: Config) -> None:
    whole = Search(cfg, 2)
    whole.begin(0)
    whole.advance(400)
    for stop in (1, SIZE - 1, SIZE, 137, 251):
        first = Search(cfg, 2)
        first.begin(0)
        first.advance(stop)
        resumed = Search(cfg, 2)
        resumed.restore(first.state())
        resumed.advance(400)
        assert without_times(resumed.state()) == without_times(whole.state())


def test_the_lineage_table_compacts_and_keeps_every_ancestry() -> None:
    cfg = config(budget=replace(config().budget, max_individuals=30000))
    search = Search(cfg, 4)
    search.begin(0)
    search.advance(30000)  # 30,000 rows do not fit the first table: it compacts on the way
    engine = search.engine()
    assert engine.lineage[0].shape[0] < 30000
    for slot in range(0, SIZE, 7):
        steps = engine.ancestry_of(slot).steps
        assert steps[-1].fitness == engine.fitness()[slot]
        first = engine.root_program(steps[0])
        assert first is not None
        assert replay(first, engine.ancestry_of(slot), search.mutation)[-1] == engine.member(slot)


def test_programs_of_the_state_must_fit_the_search() -> None:
    from azdsl.state import StateError

    search = Search(config(), 1)
    search.begin(0)
    search.advance(40)
    state = search.state()
    state["current"]["programs"][0] = "def Setup():\n  s9 = 1.0\n"
    with pytest.raises(StateError, match="s9"):
        Search(config(), 1).restore(state)
    state = search.state()
    state["current"]["lineage"]["rows"][3][1] = 10**6
    with pytest.raises(StateError, match=r"lineage.rows\[3\]\[1\]"):
        Search(config(), 1).restore(state)
    assert parse(search.state()["current"]["programs"][0])


def test_a_checkpoint_holds_only_the_lineage_rows_in_use_and_resumes_across_compactions() -> None:
    cfg = config(budget=replace(config().budget, max_individuals=20000))
    whole = Search(cfg, 13)
    whole.begin(0)
    whole.advance(20000)
    first = Search(cfg, 13)
    first.begin(0)
    first.advance(7777)
    state = first.state()
    rows = state["current"]["lineage"]["rows"]
    reached = set(state["current"]["members"]) | set(state["current"]["lineage"]["bests"])
    for r in range(len(rows) - 1, -1, -1):  # parents come before children
        if r in reached and rows[r][1] >= 0:
            reached.add(rows[r][1])
    assert reached == set(range(len(rows)))
    resumed = Search(cfg, 13)
    resumed.restore(state)
    resumed.advance(20000)
    assert without_times(resumed.state()) == without_times(whole.state())


def test_random_search_keeps_the_fixed_components_of_the_initial_program() -> None:
    """Learning only, by random search: every child's Setup and Predict are the initial
    program's (the components without ops), its Learn is random search's fresh draw."""
    root = Path(__file__).resolve().parent.parent / "examples"
    cfg = replace(read_config(root / "linear_learning_only.toml")[0], method="random",
                  population_size=10)
    search = Search(cfg, 3)
    search.begin(0)
    engine = search.engine()
    initial = parse((root / "linear_forward.az").read_text())
    search.advance(30)
    keys = engine.keys
    for slot, member in enumerate(engine.members()):
        assert (member.setup, member.predict) == (initial.setup, initial.predict), slot
    drawn = random_program_from_key(rng.stream(keys.mutation, 29), search.mutation)
    assert engine.member((29 - 10) % 10).learn == drawn.learn != initial.learn
