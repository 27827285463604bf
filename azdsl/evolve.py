"""The search: regularized evolution or random search, and the experiment driver around it.

docs/search.md: each experiment searches on T_search (new task seeds when asked),
its best program is scored on T_select, experiments repeat until the select fitness exceeds
`sufficient_fitness` or `max_experiments` ran, and the chosen program is scored once on
T_final. One root seed feeds np.random.SeedSequence, split per experiment and per concern
(tasks, initial programs, tournaments, mutations, evaluation seeds, selection), so the same
seed and config give the same run. The whole state between two individuals is JSON
(`Search.state`, programs as canonical text, generators as their state dicts), so a run
restored from a checkpoint ends exactly where an uninterrupted one ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from azdsl import rng as azrng
from azdsl import searchfast
from azdsl import state as st
from azdsl.config import Config, TaskSet
from azdsl.errors import AzdslError, CheckError, ConfigError
from azdsl.evaluate import evaluate
from azdsl.fec import FecCache
from azdsl.hurdles import Hurdle
from azdsl.limits import MAX_INT, SEED_LIMIT
from azdsl.mutate import MutationConfig, empty_program, mutate, random_program
from azdsl.ops import Kind
from azdsl.parse import parse
from azdsl.population import Population, Uniforms
from azdsl.printer import unparse
from azdsl.program import COMPONENTS, Program, check_for_dim
from azdsl.scorer import BackendEngine, Engine, ProbeSize, Scorer, TrainBudget, VmEngine
from azdsl.searchfast import FastLoop
from azdsl.simplify import simplify
from azdsl.tasks import Task, make_collection

STATE_FORMAT = "azdsl-search-state"
STATE_VERSION = 1

# Concerns of one experiment's seed sequence (the spawn key's second element).
_TASKS, _INIT, _TOURNAMENT, _MUTATION, _EVALUATION, _SELECT = range(6)
_FINAL_EXPERIMENT = -1  # spawn key of the final evaluation's seed
# Children between two looks at the clock (and, in `run`, at signals and time-based
# checkpoints): in the Python loop, and per call of the compiled loop.
_POLL = 64
_CHUNK = 2048


class Hooks(Protocol):
    """What a search reports as it goes (the run folder and the progress bar listen)."""

    def progress(self, record: dict[str, Any]) -> None: ...

    def checkpoint(self, state: dict[str, Any]) -> None: ...

    def best(self, program: Program, fitness: float) -> None: ...

    def experiment(self, record: dict[str, Any]) -> None: ...


class NoHooks:
    def progress(self, record: dict[str, Any]) -> None:
        pass

    def checkpoint(self, state: dict[str, Any]) -> None:
        pass

    def best(self, program: Program, fitness: float) -> None:
        pass

    def experiment(self, record: dict[str, Any]) -> None:
        pass


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


def _generator(seed: int, experiment: int, concern: int) -> np.random.Generator:
    sequence = np.random.SeedSequence(entropy=seed, spawn_key=(experiment % 2**32, concern))
    return np.random.Generator(np.random.PCG64(sequence))


def _seed64(seed: int, experiment: int, concern: int) -> int:
    sequence = np.random.SeedSequence(entropy=seed, spawn_key=(experiment % 2**32, concern))
    low, high = sequence.generate_state(2, np.uint32).tolist()
    return int(low) | (int(high) << 32)


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
class Streams:
    """The random streams of one experiment's search (`Search.begin`); the tasks and the
    selection always draw from the root seed's."""

    init: np.random.Generator  # the initial programs
    tournament: np.random.Generator
    mutation: np.random.Generator
    evaluation: int  # child k is evaluated with seed evaluation + k


@dataclass
class _Experiment:
    """The state of the experiment under way (everything a checkpoint needs of it), and what
    a session builds to run it (never saved)."""

    index: int
    population: Population
    init_rng: np.random.Generator
    tournament: Uniforms
    mutation_rng: np.random.Generator
    eval_base: int
    fec: FecCache | None
    individuals: int = 0
    train_steps: int = 0
    seconds: float = 0.0
    best_program: Program | None = None
    best_fitness: float = -1.0
    last_progress: int = 0
    hurdle: Hurdle | None = None  # the paper's hurdles (azdsl.hurdles), when enabled
    # Built on first use by the session: the search and select tasks, the scorer, and the
    # compiled loop, whose arrays run ahead of the Python objects above while `stale`.
    tasks: tuple[list[Task], list[Task]] | None = None
    scorer: Scorer | None = None
    fast: FastLoop | None = None
    stale: bool = False


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


# Reads the program text at a key of a state (parsed once per text, checked for the run).
ProgramReader = Callable[[Any, str], Program]


def _present_as_configured(saved: object, fresh: object, key: str, feature_is: str,
                           what: str) -> None:
    """A saved part of the state (FEC cache, hurdle) must be there exactly when the config
    turns its feature on; StateError otherwise."""
    if (saved is None) != (fresh is None):
        raise st.StateError(f"{key}: must be " + (
            f"null: {feature_is} off in the config" if fresh is None else
            f"{what}: {feature_is} on in the config"))


@dataclass
class Search:
    """One run: experiments until done, then the final evaluation. `run` does it all; an
    island (azdsl.islands) takes the same steps in segments: `begin` an experiment, `advance`
    it, read it (`summary`, `fittest`), `inject` migrants, and its driver `finish`es it."""

    config: Config
    seed: int
    backend: str = "vm"
    hooks: Hooks = field(default_factory=NoHooks)
    stop_requested: Callable[[], bool] = field(default=lambda: False)
    compiled: bool = True  # run children in the compiled loop where it can (azdsl.searchfast)
    # An island's search: its driver (azdsl.parallel) begins and finishes the experiments and
    # scores on the held-out tasks, so none are built here, and a state it restores holds the
    # experiment under way, of any index (an island keeps no finished experiments).
    island: bool = False

    experiments: list[dict[str, Any]] = field(default_factory=list)
    chosen: Program | None = None
    chosen_fitness: float = -1.0
    progress_records: int = 0
    total_individuals: int = 0
    total_train_steps: int = 0
    final: dict[str, Any] | None = None
    _current: _Experiment | None = None

    def __post_init__(self) -> None:
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
    # `run` is begin, advance, finish: the same steps an island (azdsl.islands) takes one
    # segment at a time, with its driver (azdsl.parallel) finishing the experiment.

    def run(self) -> Result:
        """Run (or continue) until the final evaluation; returns the result."""
        while self.final is None:
            if self._current is None:
                self.begin(len(self.experiments))
            self._search(self._under_way())
            self.finish()
        return self.result()

    def individuals_done(self) -> int:
        """Individuals evaluated so far, over all experiments."""
        current = self._current.individuals if self._current is not None else 0
        return self.total_individuals + current

    def result(self) -> Result:
        assert self.final is not None and self.chosen is not None
        return Result(self.chosen, simplify(self.chosen), self.chosen_fitness,
                      float(self.final["fitness"]), self.experiments, self.total_individuals,
                      self.total_train_steps)

    def tasks(self, experiment: int) -> tuple[list[Task], list[Task]]:
        """The search and select tasks of an experiment (from the root seed, whatever streams
        its search draws from)."""
        draw = _generator(self.seed, experiment, _TASKS)
        search = make_tasks(self.config.search_tasks, draw)
        select = make_tasks(self.config.select_tasks, draw)
        return search, select

    def begin(self, experiment: int, streams: Streams | None = None) -> None:
        """Start experiment `experiment` (from 0) with an empty population, drawing from
        `streams` (by default the root seed's, as `run` does)."""
        self._current = self._new_experiment(experiment, streams)

    def advance(self, until: int) -> bool:
        """Evaluate children of the experiment under way until it has `until` individuals or
        its budget is spent; True once it is. They run in the compiled loop where it can
        (azdsl.searchfast), else in Python: the same children either way, in any segments."""
        ex = self._under_way()
        start = time.monotonic()
        ended = self._spent(ex)
        while not ended and ex.individuals < until:
            if ex.population.full and self._compiled_ok():
                ended = self._compiled_children(ex, until, start)
            else:
                ended = self._python_children(ex, until, start)
        ex.seconds += time.monotonic() - start
        return self._spent(ex)

    def fittest(self, n: int) -> list[tuple[Program, float]]:
        """The `n` fittest members of the population under way and their fitness, best first
        (the lower slot first on ties)."""
        ex = self._under_way()
        self._refresh(ex)
        fitness = ex.population.fitness
        order = sorted(range(len(fitness)), key=lambda s: (-fitness[s], s))
        return [(self._member(ex, s), fitness[s]) for s in order[:n]]

    def inject(self, migrants: Sequence[tuple[Program, float]]) -> None:
        """Migrants (programs and their fitness) replace the oldest members, in order; while
        the population fills, they take free slots."""
        ex = self._under_way()
        for program, fitness in migrants:
            if ex.fast is not None and _inject(ex.fast, program, fitness):
                ex.stale = True
                continue
            self._sync(ex)  # no room in the loop's rows: go on from the Python objects
            ex.fast = None
            ex.population.add(program, fitness)

    def summary(self) -> Standing:
        """Where the experiment under way stands."""
        ex = self._under_way()
        self._refresh(ex)
        pop = ex.population
        mean, std, best = pop.stats()
        candidate: tuple[Program, float] | None
        if self.config.method == "random" or not pop.programs:
            candidate = ((ex.best_program, ex.best_fitness) if ex.best_program is not None
                         else None)
        else:
            slot = pop.best()
            candidate = self._member(ex, slot), pop.fitness[slot]
        fec, hurdle = ex.fec, ex.hurdle
        return Standing(
            experiment=ex.index, individuals=ex.individuals, train_steps=ex.train_steps,
            seconds=ex.seconds, spent=self._spent(ex), size=len(pop.fitness), mean=mean,
            std=std, best=best, best_ever=ex.best_fitness, best_ever_program=ex.best_program,
            candidate=candidate, fec_hits=fec.hits if fec is not None else 0,
            fec_misses=fec.misses if fec is not None else 0,
            memo_hits=ex.scorer.memo.hits if ex.scorer is not None else 0,
            hurdle_stopped=hurdle.stopped if hurdle is not None else 0)

    def finish(self, standing: Standing | None = None) -> None:
        """End an experiment: the one under way, or the one `standing` sums up (an island
        run's driver). Its candidate is scored on T_select and recorded, the best so far is
        chosen, the final evaluation runs once the run is done, and the state is
        checkpointed."""
        if standing is None:
            ex = self._under_way()
            standing, select_tasks = self.summary(), self._tasks_of(ex)[1]
        else:
            select_tasks = self.tasks(standing.experiment)[1]
        assert standing.candidate is not None
        candidate, search_fitness = standing.candidate
        select_seed = _seed64(self.seed, standing.experiment, _SELECT)
        simplified = simplify(candidate)
        select = evaluate(simplified, select_tasks, seed=select_seed, backend=self.backend,
                          max_abs_error=self.config.max_abs_error).fitness
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
        }
        self.experiments.append(record)
        self.total_individuals += standing.individuals
        self.total_train_steps += standing.train_steps
        if select >= self.chosen_fitness:  # ties: the later candidate (as the original)
            self.chosen, self.chosen_fitness = candidate, select
        assert self.chosen is not None
        self.hooks.experiment(record)
        self.hooks.best(self.chosen, self.chosen_fitness)
        self._current = None
        budget = self.config.budget
        done = (budget.sufficient_fitness is not None
                and self.chosen_fitness > budget.sufficient_fitness) or (
            budget.max_experiments != 0 and len(self.experiments) >= budget.max_experiments)
        if done:
            self._final()
        self.hooks.checkpoint(self.state())

    def _under_way(self) -> _Experiment:
        if self._current is None:
            raise RuntimeError("no experiment is under way (begin one first)")
        return self._current

    def _new_experiment(self, index: int, streams: Streams | None = None) -> _Experiment:
        if streams is None:
            streams = Streams(_generator(self.seed, index, _INIT),
                              _generator(self.seed, index, _TOURNAMENT),
                              _generator(self.seed, index, _MUTATION),
                              _seed64(self.seed, index, _EVALUATION))
        fec = None
        if self.config.fec.enabled:
            fec = FecCache(self.config.fec.cache_size, self.config.fec.forget_every)
        return _Experiment(
            index=index,
            population=Population(self.config.population_size),
            init_rng=streams.init,
            tournament=Uniforms(streams.tournament),
            mutation_rng=streams.mutation,
            eval_base=streams.evaluation,
            fec=fec,
            hurdle=self._hurdle(),
        )

    def _tasks_of(self, ex: _Experiment) -> tuple[list[Task], list[Task]]:
        if ex.tasks is None:
            ex.tasks = self.tasks(ex.index)
        return ex.tasks

    def _engine(self, tasks: list[Task]) -> Engine:
        fec = self.config.fec
        probe = ProbeSize(fec.num_train, fec.num_valid)
        if self.backend == "vm":
            return VmEngine(tasks, probe, self.sizes, self.config.max_abs_error)
        return BackendEngine(self.backend, tasks, probe, self.config.max_abs_error)

    def _scorer(self, ex: _Experiment) -> Scorer:
        """The experiment's scorer, built once a session (its memo never changes a result)."""
        if ex.scorer is None:
            tasks = self._tasks_of(ex)[0]
            num_train = [len(t.y_train) for t in tasks]
            budget = None
            if self.baseline is not None and self.config.train_budget is not None:
                budget = TrainBudget(self.baseline, self.config.train_budget.threshold_factor,
                                     num_train)
            ex.scorer = Scorer(self._engine(tasks), num_train, fec=ex.fec,
                               memo_size=self.config.fec.structural_cache_size,
                               combine=self.config.combine, train_budget=budget,
                               hurdle=ex.hurdle)
        return ex.scorer

    def _hurdle(self) -> Hurdle | None:
        h = self.config.hurdles
        if not h.enabled:
            return None
        size = self.config.population_size
        return Hurdle(h.tasks, h.percentile, h.warmup or size, window=size)

    def _spent(self, ex: _Experiment) -> bool:
        b = self.config.budget
        return bool((b.max_train_steps and ex.train_steps >= b.max_train_steps)
                    or (b.max_individuals and ex.individuals >= b.max_individuals)
                    or (b.max_seconds and ex.seconds >= b.max_seconds))

    def _compiled_ok(self) -> bool:
        return self.compiled and searchfast.supported(self.backend, self.sizes)

    def _loop(self, ex: _Experiment) -> FastLoop:
        """The compiled loop on this experiment's state (azdsl.searchfast), built once: it
        keeps the population in its arrays between segments, written back into the Python
        objects only when they are read (`_sync`)."""
        if ex.fast is not None:
            return ex.fast
        mcfg = self.mutation
        capacity = 1
        held = [*ex.population.programs, *([ex.best_program] if ex.best_program else [])]
        for c in range(3):
            longest = max(mcfg.max_sizes[c], mcfg.init_sizes[c],
                          *(len(p.components[c]) for p in held))
            capacity += longest
        fec = self.config.fec
        budget = self._scorer(ex).train_budget
        loop = FastLoop(mcfg, self.sizes, self._tasks_of(ex)[0],
                        (fec.num_train, fec.num_valid), self.config.max_abs_error,
                        self.config.combine, ex.fec, fec.structural_cache_size,
                        budget.limits if budget else None, capacity,
                        self.config.method == "random", ex.hurdle)
        loop.load(ex.population, ex.tournament, ex.mutation_rng, ex.best_program,
                  ex.best_fitness)
        ex.fast = loop
        return loop

    def _refresh(self, ex: _Experiment) -> None:
        """The fitness values, the best so far and the counters from the compiled loop (its
        programs are read one by one, `_member`)."""
        if ex.fast is not None:
            ex.fast.report(ex.population, ex, ex.scorer)

    def _sync(self, ex: _Experiment) -> None:
        """Write the compiled loop's arrays back into the experiment's Python objects."""
        if ex.fast is not None and ex.stale:
            ex.best_program, ex.best_fitness = ex.fast.export(ex.population, ex.tournament,
                                                              ex.mutation_rng)
        ex.stale = False

    def _member(self, ex: _Experiment, slot: int) -> Program:
        if ex.fast is None:
            return ex.population.programs[slot]
        rows, lits, sizes, _ = ex.fast.pop
        return searchfast.decode(rows[slot], lits[slot], sizes[slot])

    def _first_program(self, ex: _Experiment) -> Program:
        kind = self.config.initial_population
        if kind == "random":
            return random_program(ex.init_rng, self.mutation)
        if kind == "empty":
            return empty_program(self.mutation)
        assert self.initial is not None
        return self.initial

    def _python_children(self, ex: _Experiment, until: int, start: float) -> bool:
        """Children in Python up to `until` individuals; while the population fills, only
        until it is full if the compiled loop takes over then. True when the budget (train
        steps, individuals, the clock since `start`) stopped them."""
        config = self.config
        budget = config.budget
        pop = ex.population
        mcfg = self.mutation
        scorer = self._scorer(ex)
        random_search = config.method == "random"
        tournament_size = config.tournament_size
        take = ex.tournament.take
        max_steps = budget.max_train_steps
        max_individuals = budget.max_individuals
        max_seconds = budget.max_seconds
        score = scorer.score
        mutation_rng = ex.mutation_rng
        programs = pop.programs
        tournament = pop.tournament
        add = pop.add
        eval_base = ex.eval_base
        mask = azrng.MASK
        individuals = ex.individuals
        steps_before = ex.train_steps
        scorer.train_steps = 0
        if self._compiled_ok():
            until = min(until, individuals + pop.capacity - len(programs))
        ended = False
        next_poll = individuals  # the clock is read every _POLL children only
        while individuals < until:
            if individuals >= next_poll:
                next_poll = individuals + _POLL
                if max_seconds and ex.seconds + (time.monotonic() - start) >= max_seconds:
                    ended = True
                    break
            if (max_steps and steps_before + scorer.train_steps >= max_steps) or (
                max_individuals and individuals >= max_individuals
            ):
                ended = True
                break
            if len(programs) < pop.capacity:
                child = self._first_program(ex)
            elif random_search:
                child = random_program(mutation_rng, mcfg)
            else:
                child = mutate(programs[tournament(take(tournament_size))], mutation_rng,
                               mcfg)[0]
            value = score(child, (eval_base + individuals) & mask)
            add(child, value)
            individuals += 1
            if value > ex.best_fitness:
                ex.best_fitness, ex.best_program = value, child
        ex.individuals = individuals
        ex.train_steps = steps_before + scorer.train_steps
        return ended

    def _compiled_children(self, ex: _Experiment, until: int, start: float) -> bool:
        """Children in the compiled loop up to `until` individuals (the Python loop's twin:
        the same kernel, budget and seeds); True when the budget stopped them."""
        fast = self._loop(ex)
        budget = self.config.budget
        ex.stale = True
        while ex.individuals < until:
            if budget.max_seconds and (ex.seconds + (time.monotonic() - start)
                                       >= budget.max_seconds):
                return True
            done, steps, stop = fast.run(min(until - ex.individuals, _CHUNK),
                                         self.config.tournament_size, budget.max_train_steps,
                                         budget.max_individuals, ex.eval_base, ex.individuals,
                                         ex.train_steps)
            ex.individuals += done
            ex.train_steps += steps
            if stop:
                return True
        return False

    def _search(self, ex: _Experiment) -> None:
        """The experiment's search to the end of its budget, with what `run` adds to
        `advance`: progress records, checkpoints (every `checkpoint_every` individuals and
        `checkpoint_seconds`) and stops at a request (Interrupted, after a checkpoint)."""
        config = self.config
        capacity = ex.population.capacity
        progress_every = config.progress_every
        checkpoint_every = config.checkpoint_every
        checkpoint_seconds = config.checkpoint_seconds
        never = 2**62
        next_progress = ex.last_progress + progress_every
        next_checkpoint = ex.individuals + checkpoint_every if checkpoint_every else never
        seconds_before, session = ex.seconds, time.monotonic()
        last_checkpoint = session

        def clock() -> None:  # the run's clock is the wall's: hooks and checkpoints count too
            ex.seconds = seconds_before + (time.monotonic() - session)

        def checkpoint() -> None:
            nonlocal last_checkpoint, next_checkpoint
            clock()
            self.hooks.checkpoint(self.state())
            last_checkpoint = time.monotonic()
            next_checkpoint = ex.individuals + checkpoint_every if checkpoint_every else never

        while True:
            stop = self.stop_requested()
            if stop or (checkpoint_seconds
                        and time.monotonic() - last_checkpoint >= checkpoint_seconds):
                checkpoint()
                if stop:
                    raise Interrupted
            # Progress records fall due at every progress_every individuals and once the
            # population is full; signals and the clock are looked at between segments.
            until = min(ex.individuals + (_CHUNK if ex.fast is not None else _POLL),
                        next_progress, next_checkpoint)
            if ex.individuals < capacity:
                until = min(until, capacity)
            before = ex.individuals
            spent = self.advance(max(until, before + 1))
            clock()
            if ex.individuals > before and (ex.individuals >= next_progress
                                            or ex.individuals == capacity):
                ex.last_progress = ex.individuals
                next_progress = ex.individuals + progress_every
                self._progress()
            if ex.individuals >= next_checkpoint:
                checkpoint()
            if spent:
                break
        ex.last_progress = ex.individuals
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
        seed = _seed64(self.seed, _FINAL_EXPERIMENT, _SELECT)
        simplified = simplify(self.chosen)
        evaluation = evaluate(simplified, tasks, seed=seed, backend=self.backend,
                              max_abs_error=self.config.max_abs_error)
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
            self._sync(ex)
            printed: dict[int, str] = {}  # each program object printed once
            index: dict[str, int] = {}  # each text stored once (equal programs share it)
            unique: list[str] = []
            slots = []
            for program in ex.population.programs:
                text = printed.get(id(program))
                if text is None:
                    text = printed[id(program)] = unparse(program)
                slot = index.get(text)
                if slot is None:
                    slot = index[text] = len(unique)
                    unique.append(text)
                slots.append(slot)
            current = {
                "index": ex.index,
                "programs": unique,
                "slots": slots,
                "fitness": ex.population.fitness,
                "next_slot": ex.population.next_slot,
                "init_rng": ex.init_rng.bit_generator.state,
                "tournament": ex.tournament.state(),
                "mutation_rng": ex.mutation_rng.bit_generator.state,
                "eval_base": ex.eval_base,
                "fec": ex.fec.state() if ex.fec is not None else None,
                "hurdle": ex.hurdle.state() if ex.hurdle is not None else None,
                "individuals": ex.individuals,
                "train_steps": ex.train_steps,
                "seconds": ex.seconds,
                "best_program": unparse(ex.best_program) if ex.best_program else None,
                "best_fitness": ex.best_fitness,
                "last_progress": ex.last_progress,
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
        """The experiment under way, its population and streams (see `state`)."""
        ex = self._new_experiment(self._read_index(cur, finished))
        pop = ex.population
        key = cur.key
        unique = [program(text, f"{key('programs')}[{i}]")
                  for i, text in enumerate(cur.items("programs", most=pop.capacity))]
        slots = cur.items("slots", most=pop.capacity)
        pop.programs = [unique[st.integer(slot, f"{key('slots')}[{i}]", 0, len(unique) - 1)]
                        for i, slot in enumerate(slots)]
        pop.fitness = [st.fitness(value, f"{key('fitness')}[{i}]")
                       for i, value in enumerate(cur.items("fitness", length=len(slots)))]
        # The ring only turns once the population is full.
        pop.next_slot = cur.integer("next_slot", 0, pop.capacity - 1 if pop.full else 0)
        ex.init_rng.bit_generator.state = st.generator_state(cur.get("init_rng"),
                                                             key("init_rng"))
        ex.tournament = Uniforms.from_state(cur.get("tournament"), key("tournament"),
                                            ex.tournament.block)
        ex.mutation_rng.bit_generator.state = st.generator_state(cur.get("mutation_rng"),
                                                                 key("mutation_rng"))
        ex.eval_base = cur.integer("eval_base", 0, st.UINT64_MAX)
        ex.fec = self._read_fec(cur.optional_table("fec"), key("fec"), ex.fec)
        hurdle = cur.data.get("hurdle")  # absent from states of before hurdles
        ex.hurdle = self._read_hurdle(st.Fields(hurdle, key("hurdle")) if hurdle is not None
                                      else None, key("hurdle"), ex.hurdle)
        ex.individuals = cur.integer("individuals")
        ex.train_steps = cur.integer("train_steps")
        ex.seconds = cur.number("seconds", 0.0)
        best = cur.get("best_program")
        ex.best_program = program(best, key("best_program")) if best is not None else None
        ex.best_fitness = cur.fitness("best_fitness", unset=True)
        ex.last_progress = cur.integer("last_progress", 0, ex.individuals)
        return ex

    @staticmethod
    def _read_fec(f: st.Fields | None, key: str, fresh: FecCache | None) -> FecCache | None:
        """The FEC cache: there exactly when the config enables FEC, and of its sizes (the
        compiled loop's table holds cache_size entries)."""
        _present_as_configured(f, fresh, key, "FEC is", "the FEC cache")
        if f is None or fresh is None:
            return None
        size = f.integer("cache_size", fresh.cache_size, fresh.cache_size)
        forget = f.integer("forget_every", fresh.forget_every, fresh.forget_every)
        keys = [st.integer(k, f"{f.key('keys')}[{i}]", 0, st.UINT64_MAX)
                for i, k in enumerate(f.items("keys", most=size))]
        if len(set(keys)) != len(keys):
            raise st.StateError(f"{f.key('keys')}: holds a key twice")
        fitness = [st.fitness(v, f"{f.key('fitness')}[{i}]")
                   for i, v in enumerate(f.items("fitness", length=len(keys)))]
        # An entry is forgotten once it has served fresh.max_hits hits (forget_every - 1).
        most = fresh.max_hits - 1 if forget else MAX_INT
        served = [st.integer(v, f"{f.key('served')}[{i}]", 0, most)
                  for i, v in enumerate(f.items("served", length=len(keys)))]
        return FecCache.from_state({
            "cache_size": size, "forget_every": forget, "hits": f.integer("hits"),
            "misses": f.integer("misses"), "keys": keys, "fitness": fitness, "served": served})

    @staticmethod
    def _read_hurdle(f: st.Fields | None, key: str, fresh: Hurdle | None) -> Hurdle | None:
        """The hurdle: there exactly when the config enables hurdles, with its settings."""
        _present_as_configured(f, fresh, key, "hurdles are", "the hurdle")
        if f is None or fresh is None:
            return None
        state = fresh.state()
        for name in ("tasks", "warmup", "window"):
            f.integer(name, state[name], state[name])
        if f.number("percentile") != state["percentile"]:
            raise st.StateError(f"{f.key('percentile')}: must be {state['percentile']} (the "
                                "config's)")
        recorded = f.integer("recorded")
        # The window holds the partial fitness of the last `window` children recorded.
        values = [st.fitness(v, f"{f.key('values')}[{i}]") for i, v in enumerate(
            f.items("values", length=min(recorded, fresh.window)))]
        return Hurdle.from_state({**state, "values": values, "recorded": recorded,
                                  "stopped": f.integer("stopped", 0, recorded)})


def _inject(fast: FastLoop, program: Program, fitness: float) -> bool:
    """Write a migrant over the compiled loop's oldest member, as Population.add does (its
    arrays: pop = (rows, literals, component sizes, fitness), ring = the oldest slot); False
    when the program does not fit its rows."""
    rows, lits, sizes, values = fast.pop
    if sum(len(c) for c in program.components) > fast.capacity:
        return False
    slot = int(fast.ring[0])
    searchfast.encode(program, rows[slot], lits[slot], sizes[slot])
    values[slot] = fitness
    fast.ring[0] = (slot + 1) % values.shape[0]
    return True


def evolve(config: Config, seed: int = 0, *, backend: str = "vm",
           hooks: Hooks | None = None) -> Result:
    """Run the experiments a config describes and return the chosen program and fitnesses."""
    return Search(config, seed, backend, hooks or NoHooks()).run()
