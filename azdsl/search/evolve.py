"""The search: regularized evolution or random search, and the experiment driver around it.

docs/search.md: each experiment searches on T_search (new task seeds when asked),
its best program is scored on T_select, experiments repeat until the select fitness exceeds
`sufficient_fitness` or `max_experiments` ran, and the chosen program is scored once on
T_final. One root seed feeds np.random.SeedSequence, split per experiment and per concern
(tasks, initial programs, tournaments, mutations, evaluation seeds, selection), so the same
seed and config give the same run. Each experiment's search runs in azdsl.search.engine's arrays and
compiled loop; its random streams are counter-based, so the whole state between two
individuals is JSON (`Search.state`, programs as canonical text) and a run restored from a
checkpoint ends exactly where an uninterrupted one ends. Every individual's lineage is kept
(azdsl.search.lineage), and each experiment's record holds the ancestry of its best program;
the hall of fame (azdsl.search.hall_of_fame) is merged into as each experiment ends.

From Python (docs/python.md): `evolve` takes a Config, a TOML file or TOML text, budget
overrides and callbacks for any subset of the events (`Callbacks`); `Search.stop()` (or a
callback returning STOP) ends the run cleanly with the best so far, and `Search.extend`
(`evolve(..., resume=result, extend=n)`) gives a finished run more experiments.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from azdsl import state as st
from azdsl.errors import AzdslError, CheckError, ConfigError
from azdsl.language.ops import Kind
from azdsl.language.parse import parse
from azdsl.language.printer import unparse
from azdsl.language.program import COMPONENTS, Program, check_for_dim
from azdsl.language.simplify import canonical_key, simplify
from azdsl.limits import SEED_LIMIT
from azdsl.running.evaluate import evaluate
from azdsl.running.tasks import Task, make_collection
from azdsl.search import hall_of_fame as hof
from azdsl.search.config import Config, TaskSet, load_config, parse_config, with_settings
from azdsl.search.engine import Engine, Keys, LoopSettings, budget_limits
from azdsl.search.lineage import ID_SHIFT, Ancestry
from azdsl.search.mutate import MutationConfig, empty_program

STATE_FORMAT = "azdsl-search-state"
STATE_VERSION = 2  # 1: before counter-based streams and lineage (not resumable now)

# Concerns of one experiment's seed sequence (the spawn key's second element).
_TASKS, _INIT, _TOURNAMENT, _MUTATION, _EVALUATION, _SELECT = range(6)
_FINAL_EXPERIMENT = -1  # spawn key of the final evaluation's seed
# Children per call of the compiled loop: between two calls the clock, signals and
# time-based checkpoints are looked at.
_CHUNK = 2048


class Hooks(Protocol):
    """What a search reports as it goes (the run folder and the progress bar listen)."""

    def progress(self, record: dict[str, Any]) -> None: ...

    def checkpoint(self, state: dict[str, Any]) -> None: ...

    def best(self, program: Program, fitness: float) -> None: ...

    def experiment(self, record: dict[str, Any]) -> None: ...


class _Stop:
    def __repr__(self) -> str:
        return "azdsl.STOP"


STOP = _Stop()  # what a callback returns to stop the run (as Search.stop does)
_EVENTS = ("progress", "checkpoint", "best", "experiment")


class NoHooks:
    def progress(self, record: dict[str, Any]) -> None:
        pass

    def checkpoint(self, state: dict[str, Any]) -> None:
        pass

    def best(self, program: Program, fitness: float) -> None:
        pass

    def experiment(self, record: dict[str, Any]) -> None:
        pass


class Callbacks:
    """Hooks made of any object with some of the four methods and of plain callables
    (`on_progress=`, ...): an event nobody handles is ignored. A callback that returns STOP
    asks for a clean stop (`stop`, which `evolve` points at the run's `Search.stop`)."""

    def __init__(self, hooks: object = None, *,
                 on_progress: Callable[[dict[str, Any]], object] | None = None,
                 on_checkpoint: Callable[[dict[str, Any]], object] | None = None,
                 on_best: Callable[[Program, float], object] | None = None,
                 on_experiment: Callable[[dict[str, Any]], object] | None = None) -> None:
        given = {"progress": on_progress, "checkpoint": on_checkpoint, "best": on_best,
                 "experiment": on_experiment}
        self.handlers: dict[str, list[Callable[..., object]]] = {}
        for event in _EVENTS:
            method = getattr(hooks, event, None) if hooks is not None else None
            if method is not None and not callable(method):
                raise ConfigError(f"hooks.{event} must be callable, got {method!r}")
            extra = given[event]
            if extra is not None and not callable(extra):
                raise ConfigError(f"on_{event} must be callable, got {extra!r}")
            self.handlers[event] = [f for f in (method, extra) if f is not None]
        self.stop: Callable[[], None] = lambda: None

    def _call(self, event: str, *args: Any) -> None:
        for handler in self.handlers[event]:
            if handler(*args) is STOP:
                self.stop()

    def progress(self, record: dict[str, Any]) -> None:
        self._call("progress", record)

    def checkpoint(self, state: dict[str, Any]) -> None:
        self._call("checkpoint", state)

    def best(self, program: Program, fitness: float) -> None:
        self._call("best", program, fitness)

    def experiment(self, record: dict[str, Any]) -> None:
        self._call("experiment", record)


class Interrupted(Exception):
    """The search stopped at a request (a signal); its state was checkpointed first."""


@dataclass
class Result:
    """What a finished search found."""

    program: Program
    simplified: Program
    select_fitness: float
    final_fitness: float
    experiments: list[dict[str, Any]]
    individuals: int
    train_steps: int
    # The best distinct programs over all experiments, best first (azdsl.search.hall_of_fame).
    hall_of_fame: list[hof.Entry] = field(default_factory=list)
    # The run's state (Search.state): `evolve(..., resume=result, extend=n)` goes on from it.
    state: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def pareto_front(self) -> list[hof.Entry]:
        """The hall of fame's fitness-vs-size front, smallest first: for each program on it,
        none of the others is both as fit and as small."""
        return hof.pareto_front(self.hall_of_fame)


def _sequence(seed: int, experiment: int, *key: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(entropy=seed, spawn_key=(experiment % 2**32, *key))


def _generator(seed: int, experiment: int, concern: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(_sequence(seed, experiment, concern)))


def seed64(seed: int, experiment: int, *key: int) -> int:
    """A 64-bit seed from the root seed's sequence spawned at (experiment, *key)."""
    low, high = _sequence(seed, experiment, *key).generate_state(2, np.uint32).tolist()
    return int(low) | (int(high) << 32)


def final_seed(seed: int) -> int:
    """The evaluation seed of a run's final score on T_final (root seed `seed`): a program
    scored with it starts from the random draws the run's final program started from."""
    return seed64(seed, _FINAL_EXPERIMENT, _SELECT)


def make_tasks(task_set: TaskSet, draw: np.random.Generator | None) -> list[Task]:
    """The tasks of a set; with `draw` and `randomize`, fresh uint32 seeds for every task."""
    specs = task_set.specs
    if task_set.randomize and draw is not None:
        specs = tuple(
            replace(spec,
                    param_seeds=tuple(draw.integers(0, 2**32, spec.num_tasks).tolist()),
                    data_seeds=tuple(draw.integers(0, 2**32, spec.num_tasks).tolist()),
                    seed=None)
            for spec in specs
        )
    return make_collection(specs)


def mutation_config(config: Config, dim: int) -> MutationConfig:
    comps = config.components
    return MutationConfig(
        dim=dim, scalars=config.memory[0], vectors=config.memory[1], matrices=config.memory[2],
        ops=(comps[0].ops, comps[1].ops, comps[2].ops),
        init_sizes=(comps[0].init_size, comps[1].init_size, comps[2].init_size),
        min_sizes=(comps[0].min_size, comps[1].min_size, comps[2].min_size),
        max_sizes=(comps[0].max_size, comps[1].max_size, comps[2].max_size),
        mutation_types=config.mutations, mutate_prob=config.mutate_prob,
    )


def load_program(text: str, filename: str, dim: int) -> Program:
    program = parse(text, filename)
    problems = check_for_dim(program, dim)
    if problems:
        raise CheckError(problems, text, filename)
    return program


@dataclass
class _Experiment:
    """The experiment under way: its engine (azdsl.search.engine: the population, the caches, the
    lineage, the counters), its clock, and its tasks (built once a session, never saved)."""

    index: int
    engine: Engine
    tasks: tuple[list[Task], list[Task]]
    seconds: float = 0.0
    last_progress: int = 0


@dataclass(frozen=True)
class Standing:
    """Where an experiment's search stands (`Search.summary`; an island run's driver sums its
    islands' up in one), and what `Search.finish` records of it."""

    experiment: int  # its index, from 0
    individuals: int
    train_steps: int
    seconds: float
    spent: bool  # its budget is
    size: int  # the population: members, mean, std and best fitness
    mean: float
    std: float
    best: float
    best_ever: float  # the best child evaluated (-1.0 before the first), and its program
    best_ever_program: Program | None
    candidate: tuple[Program, float] | None  # what selection scores, and its search fitness
    # The candidate's lineage and first program (from summary(ancestry=True) only).
    candidate_ancestry: Ancestry | None
    candidate_first: Program | None
    fec_hits: int = 0
    fec_misses: int = 0
    memo_hits: int = 0
    hurdle_stopped: int = 0

    def record(self, finished: int, done: bool) -> dict[str, Any]:
        """The progress record (a line of progress.jsonl); `finished`: the individuals of the
        experiments before this one; `done`: the experiment's last record."""
        seconds = self.seconds
        return {
            "experiment": self.experiment + 1,
            "individuals": self.individuals,
            "total_individuals": finished + self.individuals,
            "seconds": round(seconds, 3),
            "individuals_per_second": round(self.individuals / seconds, 1) if seconds > 0 else 0,
            "best_fitness": self.best,
            "mean_fitness": self.mean,
            "std_fitness": self.std,
            "best_ever": self.best_ever,
            "train_steps": self.train_steps,
            "fec_hits": self.fec_hits,
            "fec_misses": self.fec_misses,
            "memo_hits": self.memo_hits,
            "hurdle_stopped": self.hurdle_stopped,
            "done": done,
        }


@dataclass
class Saved:
    """A search state read back and checked (`Search.read_state`)."""

    experiments: list[dict[str, Any]]
    chosen: Program | None
    chosen_fitness: float
    progress_records: int
    total_individuals: int
    total_train_steps: int
    final: dict[str, Any] | None
    current: _Experiment | None
    fame: list[hof.Entry] = field(default_factory=list)


# Reads the program text at a key of a state (parsed once per text, checked for the run).
ProgramReader = Callable[[Any, str], Program]


@dataclass
class Search:
    """One run: experiments until done, then the final evaluation. `run` does it all; an
    island (azdsl.scale.islands) takes the same steps in segments: `begin` an experiment, `advance`
    it, read it (`summary`, `fittest`), `inject` migrants, and its driver `finish`es it."""

    config: Config
    seed: int
    backend: str = "vm"
    hooks: Hooks = field(default_factory=NoHooks)
    stop_requested: Callable[[], bool] = field(default=lambda: False)
    # An island's search: its driver (azdsl.scale.parallel) begins and finishes the experiments and
    # scores on the held-out tasks, so none are built here, and a state it restores holds the
    # experiment under way, of any index (an island keeps no finished experiments).
    island: bool = False
    hall_of_fame_size: int = hof.HALL_OF_FAME_SIZE  # entries kept, per experiment and merged

    experiments: list[dict[str, Any]] = field(default_factory=list)
    chosen: Program | None = None
    chosen_fitness: float = -1.0
    progress_records: int = 0
    total_individuals: int = 0
    total_train_steps: int = 0
    final: dict[str, Any] | None = None
    fame: list[hof.Entry] = field(default_factory=list)  # the hall of fame so far
    _current: _Experiment | None = None

    def __post_init__(self) -> None:
        if not all(callable(getattr(self.hooks, event, None)) for event in _EVENTS):
            self.hooks = Callbacks(self.hooks)  # an object handling some of the events
        if isinstance(self.hooks, Callbacks):
            self.hooks.stop = self.stop  # a callback's STOP stops this search
        self._stopping = False
        probe = make_tasks(self.config.search_tasks, None)
        if not self.island:
            self._build_held_out()
        dims = {t.dim for t in probe}
        if len(dims) != 1:
            raise ConfigError("search_tasks: every search task must have the same F "
                              f"(found {sorted(dims)})")
        self.dim = dims.pop()
        self.mutation = mutation_config(self.config, self.dim)
        self.initial: Program | None = None
        if self.config.initial_program is not None:
            pf = self.config.initial_program
            self.initial = load_program(pf.text, pf.path, self.dim)
        self.baseline: Program | None = None
        if self.config.train_budget is not None:
            pf = self.config.train_budget.baseline
            self.baseline = load_program(pf.text, pf.path, self.dim)
        sizes = list(self.config.memory)
        longest = [max(c.max_size, c.init_size) for c in self.config.components]
        if self.initial is not None:
            needs = self.initial.memory_needs()
            sizes = [max(a, b) for a, b in zip(sizes, needs.values(), strict=True)]
            longest = [max(a, len(b)) for a, b in zip(longest, self.initial.components,
                                                      strict=True)]
        self.sizes = (sizes[0], sizes[1], sizes[2])
        # Mutation never grows a component past max_size; only the first programs can be
        # longer (init_size, an initial program).
        self.longest = (longest[0], longest[1], longest[2])

    def _build_held_out(self) -> None:
        """The select and final tasks, built once at the start: a data file that is missing
        or does not fit is an error now, before a run folder is made, not after the search."""
        make_tasks(self.config.select_tasks, None)
        make_tasks(self.config.final_tasks, None)

    def checked_program(self, text: str, key: str) -> Program:
        """A program read back from a checkpoint, held to what this search can produce (the
        VM trusts its cells and indices): it parses, its indices fit F, its cells fit the
        memory and its components the sizes. StateError naming `key` otherwise."""
        try:
            program = parse(text, key, self.dim)
        except AzdslError as exc:
            first = exc.diagnostics[0]
            line = f"line {first.span.line}: " if first.span is not None else ""
            raise st.StateError(f"{key}: not a program of this run ({line}{first.message})"
                                ) from None
        needs = program.memory_needs()
        for kind, limit in zip((Kind.SCALAR, Kind.VECTOR, Kind.MATRIX), self.sizes,
                               strict=True):
            if needs[kind] > limit:
                raise st.StateError(f"{key}: the program uses {kind.prefix}{needs[kind] - 1} "
                                    f"but this run has {limit} {kind.word} cells")
        for component, size, limit in zip(COMPONENTS, program.sizes(), self.longest,
                                          strict=True):
            if size > limit:
                raise st.StateError(f"{key}: {component.value} has {size} instructions, more "
                                    f"than this run's {limit}")
        return program

    # ---- running --------------------------------------------------------------------------
    # `run` is begin, advance, finish: the same steps an island (azdsl.scale.islands) takes one
    # segment at a time, with its driver (azdsl.scale.parallel) finishing the experiment.

    def run(self) -> Result:
        """Run (or continue) until the final evaluation, or a `stop`; returns the result."""
        while self.final is None:
            if self._current is None:
                if self._stopping and self.chosen is not None:  # stopped between experiments
                    self._final()
                    self.hooks.checkpoint(self.state())
                    break
                self.begin(len(self.experiments))
            self._search(self._under_way())
            self.finish()
        return self.result()

    def individuals_done(self) -> int:
        """Individuals evaluated so far, over all experiments."""
        current = self._current.engine.individuals if self._current is not None else 0
        return self.total_individuals + current

    def stop(self) -> None:
        """End the run cleanly as soon as it can (from a callback, a thread, or between two
        `run` calls): the experiment under way ends at the next chunk of children as if its
        budget were spent (at least one individual is scored), its candidate is scored on
        T_select, and the chosen program on T_final; `run` then returns that Result. Unlike
        `stop_requested` (a signal: checkpoint, then Interrupted), the run is finished, and
        `extend` can give it more."""
        self._stopping = True

    def extend(self, experiments: int = 1, **budget: Any) -> None:
        """Give a finished (or stopped) run `experiments` more experiments, each with the
        per-experiment budget changed by `budget` (Budget's fields: max_individuals,
        max_train_steps, max_seconds); `run` then runs them, numbered on from the last, and
        scores the chosen program on T_final again. sufficient_fitness no longer applies:
        exactly `experiments` more run. With the same budget, the extended run's experiments
        are those of a run given max_experiments = done + `experiments` from the start."""
        if self.final is None or self._current is not None:
            raise ConfigError("only a finished run can be extended (run it to the end, or "
                              "stop it, first)")
        if isinstance(experiments, bool) or not isinstance(experiments, int) or experiments < 1:
            raise ConfigError(f"extend: experiments must be a whole number >= 1, got "
                              f"{experiments!r}")
        for name in ("max_experiments", "sufficient_fitness"):
            if name in budget:
                raise ConfigError(f"extend: {name} is set by `experiments`")
        self.config = with_settings(self.config, max_experiments=len(self.experiments)
                                    + experiments, sufficient_fitness=None, **budget)
        self.final = None
        self._stopping = False

    def result(self) -> Result:
        if self.final is None or self.chosen is None:
            raise RuntimeError("the run has not finished: call run() to the end (stop() "
                               "ends it early with the best so far)")
        return Result(self.chosen, simplify(self.chosen), self.chosen_fitness,
                      float(self.final["fitness"]), self.experiments, self.total_individuals,
                      self.total_train_steps, self.hall_of_fame(), self.state())

    def hall_of_fame(self) -> list[hof.Entry]:
        """The best distinct programs of the experiments finished so far, best first."""
        return list(self.fame)

    def _experiment_fame(self, standing: Standing) -> list[hof.Entry]:
        """The experiment's part of the hall of fame: its population's fittest distinct members
        and its best child (from the engine, once, at the experiment's end); an island run's
        driver has only the island candidate and best child its standing holds."""
        number = standing.experiment + 1
        found: list[hof.Entry] = []
        if standing.best_ever_program is not None:
            found.append(hof.entry(standing.best_ever_program, standing.best_ever, number, -1))
        if self._current is not None and self._current.index == standing.experiment:
            engine = self._current.engine
            fitness = engine.fitness()
            node = engine.best_ancestry()
            if found and node is not None:
                found[0] = replace(found[0], individual=node.steps[-1].individual)
            seen: set[Any] = set()
            for slot in sorted(range(len(fitness)), key=lambda s: (-fitness[s], s)):
                if len(seen) >= self.hall_of_fame_size:
                    break
                member = engine.member(slot)
                key = canonical_key(member)
                if key in seen:
                    continue
                seen.add(key)
                found.append(hof.entry(member, fitness[slot], number,
                                       engine.ancestry_of(slot).steps[-1].individual))
        elif standing.candidate is not None:
            program, fitness_ = standing.candidate
            chain = standing.candidate_ancestry
            found.append(hof.entry(program, fitness_, number,
                                   chain.steps[-1].individual if chain else -1))
        return hof.merge(found, self.hall_of_fame_size)

    def tasks(self, experiment: int) -> tuple[list[Task], list[Task]]:
        """The search and select tasks of an experiment (from the root seed, whatever streams
        its search draws from)."""
        draw = _generator(self.seed, experiment, _TASKS)
        search = make_tasks(self.config.search_tasks, draw)
        select = make_tasks(self.config.select_tasks, draw)
        return search, select

    def keys(self, experiment: int) -> Keys:
        """The random streams of an experiment's search from the root seed (an island's
        driver gives the other islands theirs)."""
        return Keys(seed64(self.seed, experiment, _INIT),
                    seed64(self.seed, experiment, _TOURNAMENT),
                    seed64(self.seed, experiment, _MUTATION),
                    seed64(self.seed, experiment, _EVALUATION))

    def engine(self) -> Engine:
        """The engine of the experiment under way (its arrays: for tools and tests that read
        them; changing them changes the search)."""
        return self._under_way().engine

    def begin(self, experiment: int, keys: Keys | None = None) -> None:
        """Start experiment `experiment` (from 0) with an empty population, drawing from the
        streams `keys` (by default the root seed's, as `run` does)."""
        self._current = self._new_experiment(experiment, keys)

    def advance(self, until: int) -> bool:
        """Evaluate children of the experiment under way until it has `until` individuals or
        its budget is spent; True once it is. The same children in any segments."""
        ex = self._under_way()
        engine = ex.engine
        budget = self.config.budget
        start = time.monotonic()
        ended = self._spent(ex)
        while not ended and engine.individuals < until:
            if budget.max_seconds and (ex.seconds + (time.monotonic() - start)
                                       >= budget.max_seconds):
                break
            _, _, ended = engine.run(min(until - engine.individuals, _CHUNK),
                                     budget.max_train_steps, budget.max_individuals)
        ex.seconds += time.monotonic() - start
        return self._spent(ex)

    def fittest(self, n: int) -> list[tuple[Program, float, Ancestry]]:
        """The `n` fittest members of the population under way, their fitness and ancestry,
        best first (the lower slot first on ties)."""
        engine = self._under_way().engine
        fitness = engine.fitness()
        order = sorted(range(len(fitness)), key=lambda s: (-fitness[s], s))
        return [(engine.member(s), fitness[s], engine.ancestry_of(s)) for s in order[:n]]

    def inject(self, migrants: Sequence[tuple[Program, float, Ancestry | None]]) -> None:
        """Migrants (programs of this search space, their fitness and ancestry) replace the
        oldest members, in order; while the population fills, they take free slots."""
        engine = self._under_way().engine
        for program, fitness, ancestry in migrants:
            engine.inject(program, fitness, ancestry)

    def summary(self, ancestry: bool = False) -> Standing:
        """Where the experiment under way stands; with `ancestry`, also the candidate's
        lineage and first program (walked back through the lineage table, so only when they
        are needed: at the end of an experiment)."""
        ex = self._under_way()
        engine = ex.engine
        fitness = engine.fitness()
        mean, std, best = _stats(fitness)
        best_program, best_fitness = engine.best()
        candidate: tuple[Program, float] | None = None
        chain: Ancestry | None = None
        if self.config.method == "random" or not fitness:
            if best_program is not None:
                candidate = best_program, best_fitness
                chain = engine.best_ancestry() if ancestry else None
        else:
            slot = max(range(len(fitness)), key=lambda s: (fitness[s], -s))
            candidate = engine.member(slot), fitness[slot]
            chain = engine.ancestry_of(slot) if ancestry else None
        first = engine.root_program(chain.steps[0]) if chain is not None else None
        fec_hits, fec_misses, memo_hits, stopped = engine.counts()
        return Standing(
            experiment=ex.index, individuals=engine.individuals,
            train_steps=engine.train_steps, seconds=ex.seconds, spent=self._spent(ex),
            size=len(fitness), mean=mean, std=std, best=best, best_ever=best_fitness,
            best_ever_program=best_program, candidate=candidate, candidate_ancestry=chain,
            candidate_first=first, fec_hits=fec_hits, fec_misses=fec_misses,
            memo_hits=memo_hits, hurdle_stopped=stopped)

    def finish(self, standing: Standing | None = None) -> None:
        """End an experiment: the one under way, or the one `standing` sums up (an island
        run's driver). Its candidate is scored on T_select and recorded with its ancestry, the
        best so far is chosen, the final evaluation runs once the run is done, and the state
        is checkpointed."""
        if standing is None:
            ex = self._under_way()
            standing, select_tasks = self.summary(ancestry=True), ex.tasks[1]
        else:
            select_tasks = self.tasks(standing.experiment)[1]
        assert standing.candidate is not None
        candidate, search_fitness = standing.candidate
        select_seed = seed64(self.seed, standing.experiment, _SELECT)
        simplified = simplify(candidate)
        select = evaluate(simplified, select_tasks, seed=select_seed, backend=self.backend,
                          max_abs_error=self.config.max_abs_error,
                          fitness=self.config.fitness).fitness
        ancestry, first = standing.candidate_ancestry, standing.candidate_first
        record = {
            "experiment": standing.experiment + 1,
            "individuals": standing.individuals,
            "train_steps": standing.train_steps,
            "seconds": round(standing.seconds, 3),
            "search_fitness": search_fitness,
            "select_fitness": select,
            "fec_hits": standing.fec_hits,
            "fec_misses": standing.fec_misses,
            "program": unparse(candidate),
            "simplified": unparse(simplified),
            "lineage": {"first": unparse(first) if first is not None else None,
                        "steps": ancestry.to_json() if ancestry is not None else []},
        }
        self.experiments.append(record)
        self.fame = hof.merge([*self.fame, *self._experiment_fame(standing)],
                              self.hall_of_fame_size)
        self.total_individuals += standing.individuals
        self.total_train_steps += standing.train_steps
        if select >= self.chosen_fitness:  # ties: the later candidate (as the original)
            self.chosen, self.chosen_fitness = candidate, select
        assert self.chosen is not None
        self.hooks.experiment(record)
        self.hooks.best(self.chosen, self.chosen_fitness)
        self._current = None
        budget = self.config.budget
        done = self._stopping or (budget.sufficient_fitness is not None
                and self.chosen_fitness > budget.sufficient_fitness) or (
            budget.max_experiments != 0 and len(self.experiments) >= budget.max_experiments)
        if done:
            self._final()
        self.hooks.checkpoint(self.state())

    def _under_way(self) -> _Experiment:
        if self._current is None:
            raise RuntimeError("no experiment is under way (begin one first)")
        return self._current

    def _new_experiment(self, index: int, keys: Keys | None = None) -> _Experiment:
        tasks = self.tasks(index)
        config = self.config
        fec, h = config.fec, config.hurdles
        limits = None
        if self.baseline is not None and config.train_budget is not None:
            limits = budget_limits(self.baseline, config.train_budget.threshold_factor,
                                   [len(t.y_train) for t in tasks[0]])
        settings = LoopSettings(
            population_size=config.population_size, tournament_size=config.tournament_size,
            random_search=config.method == "random", combine=config.combine,
            max_abs_error=config.max_abs_error, fec=fec.enabled, fec_cache_size=fec.cache_size,
            forget_every=fec.forget_every, probe=(fec.num_train, fec.num_valid),
            memo_size=fec.structural_cache_size,
            hurdle=(h.tasks, h.percentile, h.warmup) if h.enabled else None,
            budget_limits=limits, fitness=config.fitness)
        initial = None
        if config.initial_population == "empty":
            initial = empty_program(self.mutation)
        elif config.initial_population != "random":
            initial = self.initial
        engine = Engine(self.mutation, self.sizes, sum(self.longest), tasks[0], settings,
                        keys or self.keys(index), initial)
        return _Experiment(index=index, engine=engine, tasks=tasks)

    def _spent(self, ex: _Experiment) -> bool:
        b = self.config.budget
        engine = ex.engine
        return bool((b.max_train_steps and engine.train_steps >= b.max_train_steps)
                    or (b.max_individuals and engine.individuals >= b.max_individuals)
                    or (b.max_seconds and ex.seconds >= b.max_seconds))

    def _search(self, ex: _Experiment) -> None:
        """The experiment's search to the end of its budget, with what `run` adds to
        `advance`: progress records, checkpoints (every `checkpoint_every` individuals and
        `checkpoint_seconds`) and stops at a request (Interrupted, after a checkpoint)."""
        config = self.config
        capacity = config.population_size
        engine = ex.engine
        progress_every = config.progress_every
        checkpoint_every = config.checkpoint_every
        checkpoint_seconds = config.checkpoint_seconds
        never = 2**62
        next_progress = ex.last_progress + progress_every
        next_checkpoint = engine.individuals + checkpoint_every if checkpoint_every else never
        seconds_before, session = ex.seconds, time.monotonic()
        last_checkpoint = session

        def clock() -> None:  # the run's clock is the wall's: hooks and checkpoints count too
            ex.seconds = seconds_before + (time.monotonic() - session)

        def checkpoint() -> None:
            nonlocal last_checkpoint, next_checkpoint
            clock()
            self.hooks.checkpoint(self.state())
            last_checkpoint = time.monotonic()
            next_checkpoint = engine.individuals + checkpoint_every if checkpoint_every else never

        while True:
            if self._stopping and engine.individuals > 0:
                break
            stop = self.stop_requested()
            if stop or (checkpoint_seconds
                        and time.monotonic() - last_checkpoint >= checkpoint_seconds):
                checkpoint()
                if stop:
                    raise Interrupted
            # Progress records fall due at every progress_every individuals and once the
            # population is full; signals and the clock are looked at between segments.
            until = min(engine.individuals + _CHUNK, next_progress, next_checkpoint)
            if engine.individuals < capacity:
                until = min(until, capacity)
            before = engine.individuals
            spent = self.advance(max(until, before + 1))
            clock()
            if engine.individuals > before and (engine.individuals >= next_progress
                                            or engine.individuals == capacity):
                ex.last_progress = engine.individuals
                next_progress = engine.individuals + progress_every
                self._progress()
            if engine.individuals >= next_checkpoint:
                checkpoint()
            if spent:
                break
        ex.last_progress = engine.individuals
        self._progress(done=True)

    def _progress(self, done: bool = False) -> None:
        standing = self.summary()
        self.progress_records += 1
        self.hooks.progress(standing.record(self.total_individuals, done))
        if standing.best_ever_program is not None and self.chosen is None:
            self.hooks.best(standing.best_ever_program, standing.best_ever)

    def _final(self) -> None:
        assert self.chosen is not None
        tasks = make_tasks(self.config.final_tasks, None)
        seed = final_seed(self.seed)
        simplified = simplify(self.chosen)
        evaluation = evaluate(simplified, tasks, seed=seed, backend=self.backend,
                              max_abs_error=self.config.max_abs_error,
                              fitness=self.config.fitness)
        self.final = {
            "fitness": evaluation.fitness,
            "task_fitness": list(evaluation.task_fitness),
            "program": unparse(self.chosen),
            "simplified": unparse(simplified),
            "select_fitness": self.chosen_fitness,
        }

    # ---- state ------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Everything needed to continue this run exactly, as JSON-ready data."""
        current = None
        ex = self._current
        if ex is not None:
            keys = ex.engine.keys
            current = {
                "index": ex.index,
                "keys": [keys.init, keys.tournament, keys.mutation, keys.evaluation, keys.tag],
                "seconds": ex.seconds,
                "last_progress": ex.last_progress,
                **ex.engine.state(),
            }
        return {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "seed": self.seed,
            "experiments": self.experiments,
            "chosen": unparse(self.chosen) if self.chosen is not None else None,
            "chosen_fitness": self.chosen_fitness,
            "progress_records": self.progress_records,
            "total_individuals": self.total_individuals,
            "total_train_steps": self.total_train_steps,
            "final": self.final,
            "current": current,
            "hall_of_fame": [e.to_json() for e in self.fame],
        }

    def restore(self, state: Any) -> None:
        """Continue from `state` (from `state()` of a search with the same config and seed).
        Every field is checked first (`read_state`); a wrong one changes nothing."""
        self.restore_saved(self.read_state(state))

    def restore_saved(self, saved: Saved) -> None:
        """Continue from a state `read_state` read."""
        self.experiments = saved.experiments
        self.chosen, self.chosen_fitness = saved.chosen, saved.chosen_fitness
        self.progress_records = saved.progress_records
        self.total_individuals = saved.total_individuals
        self.total_train_steps = saved.total_train_steps
        self.final = saved.final
        self._current = saved.current
        self.fame = saved.fame

    # A checkpoint can be edited (its checksum catches accidents only), and the VM and the
    # compiled loop index memory with what it holds, so a state is read as user input: each
    # field checked for what `state()` writes, StateError naming the first that is not.

    def read_state(self, state: Any, where: str = "") -> Saved:
        """`state` (at `where` in a larger one) checked field by field and read back."""
        s = st.Fields(state, where)
        if s.data.get("format") != STATE_FORMAT or s.data.get("version") != STATE_VERSION:
            raise st.StateError(f"{where or 'the state'}: not an azdsl search state of a "
                                "known version")
        seed = s.integer("seed", 0, SEED_LIMIT - 1)
        if seed != self.seed:
            raise st.StateError(f"{s.key('seed')}: the state is of seed {seed}, not "
                                f"{self.seed}")
        parsed: dict[str, Program] = {}

        def program(value: Any, key: str) -> Program:
            text = st.text(value, key)
            found = parsed.get(text)
            if found is None:
                found = parsed[text] = self.checked_program(text, key)
            return found

        experiments = [self._read_record(st.Fields(r, f"{s.key('experiments')}[{i}]"), i,
                                         program)
                       for i, r in enumerate(s.items("experiments"))]
        chosen = s.get("chosen")
        if (chosen is None) != (not experiments):
            raise st.StateError(f"{s.key('chosen')}: must be " + (
                "the program chosen so far" if experiments else "null before the first "
                "experiment ends"))
        final = s.optional_table("final")
        current = s.optional_table("current")
        if self.island and current is None:
            raise st.StateError(f"{s.key('current')}: must be the island's experiment")
        if final is not None and current is not None:
            raise st.StateError(f"{current.path}: must be null in a finished run")
        return Saved(
            experiments=experiments,
            chosen=program(chosen, s.key("chosen")) if chosen is not None else None,
            chosen_fitness=s.fitness("chosen_fitness", unset=True),
            progress_records=s.integer("progress_records"),
            total_individuals=s.integer("total_individuals"),
            total_train_steps=s.integer("total_train_steps"),
            final=self._read_final(final, program) if final is not None else None,
            current=self._read_current(current, len(experiments), program)
            if current is not None else None,
            # absent in states from before the hall of fame
            fame=[hof.Entry.from_json(e, f"{s.key('hall_of_fame')}[{i}]", program)
                  for i, e in enumerate(s.items("hall_of_fame"))]
            if "hall_of_fame" in s.data else [],
        )

    @staticmethod
    def _read_record(r: st.Fields, index: int, program: ProgramReader) -> dict[str, Any]:
        """An experiment's record (`finish` writes it, the report prints it)."""
        r.integer("experiment", index + 1, index + 1)
        for name in ("individuals", "train_steps", "fec_hits", "fec_misses"):
            r.integer(name)
        r.number("seconds", 0.0)
        r.fitness("search_fitness", unset=True)
        r.fitness("select_fitness")
        program(r.get("program"), r.key("program"))
        program(r.get("simplified"), r.key("simplified"))
        lineage = r.table("lineage")
        first = lineage.get("first")
        if first is not None:
            program(first, lineage.key("first"))
        Ancestry.from_json(lineage.get("steps"), lineage.key("steps"))
        return dict(r.data)

    def _read_final(self, f: st.Fields, program: ProgramReader) -> dict[str, Any]:
        """The final evaluation (`_final`)."""
        tasks = sum(spec.num_tasks for spec in self.config.final_tasks.specs)
        f.fitness("fitness")
        for i, value in enumerate(f.items("task_fitness", length=tasks)):
            st.fitness(value, f"{f.key('task_fitness')}[{i}]")
        program(f.get("program"), f.key("program"))
        program(f.get("simplified"), f.key("simplified"))
        f.fitness("select_fitness")
        return dict(f.data)

    def _read_index(self, cur: st.Fields, finished: int) -> int:
        """The experiment under way: the one after those finished (an island's: any)."""
        if self.island:
            return cur.integer("index")
        return cur.integer("index", finished, finished)

    def _read_current(self, cur: st.Fields, finished: int, program: ProgramReader
                      ) -> _Experiment:
        """The experiment under way: its streams and its engine's state (see `state`)."""
        index = self._read_index(cur, finished)
        key = cur.key("keys")
        values = [st.integer(v, f"{key}[{i}]", 0, st.UINT64_MAX)
                  for i, v in enumerate(cur.items("keys", length=5))]
        if values[4] >= 2 ** (63 - ID_SHIFT):  # tag << ID_SHIFT stays an int64
            raise st.StateError(f"{key}[4]: an island tag below 2**{63 - ID_SHIFT}")
        ex = self._new_experiment(index, Keys(*values))
        ex.engine.restore(cur.data, cur.path, program)
        ex.seconds = cur.number("seconds", 0.0)
        ex.last_progress = cur.integer("last_progress", 0, ex.engine.individuals)
        return ex


def _stats(fitness: list[float]) -> tuple[float, float, float]:
    """Mean, standard deviation and best of a population's fitness (zeros when empty)."""
    if not fitness:
        return 0.0, 0.0, 0.0
    values = np.asarray(fitness, dtype=np.float64)
    mean = float(values.mean())
    var = float((values * values).mean() - mean * mean)
    return mean, max(var, 0.0) ** 0.5, float(values.max())


def as_config(config: Config | str | os.PathLike[str]) -> Config:
    """A Config as given, read from a TOML file, or parsed from TOML text (a string with a
    newline or a `[`: a config file's name has neither)."""
    if isinstance(config, Config):
        return config
    if isinstance(config, str) and ("\n" in config or "[" in config):
        return parse_config(config)
    if isinstance(config, str | os.PathLike):
        return load_config(Path(config))
    raise ConfigError(f"evolve needs a Config, a config file or TOML text, got "
                      f"{type(config).__name__}")


def evolve(config: Config | str | os.PathLike[str], seed: int = 0, *, backend: str = "vm",
           hooks: object = None, on_progress: Callable[[dict[str, Any]], object] | None = None,
           on_best: Callable[[Program, float], object] | None = None,
           on_experiment: Callable[[dict[str, Any]], object] | None = None,
           on_checkpoint: Callable[[dict[str, Any]], object] | None = None,
           resume: Result | Mapping[str, Any] | None = None, extend: int = 0,
           hall_of_fame: int = hof.HALL_OF_FAME_SIZE, **settings: Any) -> Result:
    """Run the experiments a config describes and return the chosen program and fitnesses.

    `config`: a Config, a TOML file's path or TOML text; `settings` change its budget or
    search settings (`max_individuals=`, `population_size=`, ...: `with_settings`). `hooks`
    (an object with any of progress, checkpoint, best, experiment) and the `on_*` callables
    see the events; one that returns STOP stops the run cleanly (`Search.stop`). `resume`: a
    Result (or a state) of a run of the same config and seed to go on from; with `extend`,
    a finished one runs that many more experiments (`Search.extend`). `hall_of_fame`: the
    number of distinct programs `Result.hall_of_fame` keeps."""
    if isinstance(hall_of_fame, bool) or not isinstance(hall_of_fame, int) or hall_of_fame < 1:
        raise ConfigError(f"hall_of_fame must be a whole number >= 1, got {hall_of_fame!r}")
    callbacks = Callbacks(hooks, on_progress=on_progress, on_best=on_best,
                          on_experiment=on_experiment, on_checkpoint=on_checkpoint)
    chosen = with_settings(as_config(config), **settings) if settings else as_config(config)
    search = Search(chosen, seed, backend, callbacks, hall_of_fame_size=hall_of_fame)
    if resume is not None:
        search.restore(resume.state if isinstance(resume, Result) else resume)
    if extend:
        search.extend(extend)
    return search.run()
