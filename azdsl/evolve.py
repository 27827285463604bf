"""The search: regularized evolution or random search, and the experiment driver around it.

SEMANTICS §4 / reference §6: each experiment searches on T_search (new task seeds when asked),
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
from collections.abc import Callable
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
class _Experiment:
    """The state of the experiment under way (everything a checkpoint needs of it)."""

    index: int
    population: Population
    init_rng: np.random.Generator
    tournament: Uniforms
    mutation_rng: np.random.Generator
    eval_base: int
    fec: FecCache | None
    individuals: int = 0
    train_steps: int = 0  # before this session (the scorer counts this session's)
    seconds: float = 0.0  # before this session
    best_program: Program | None = None
    best_fitness: float = -1.0
    last_progress: int = 0
    fec_hits_before: int = 0
    fec_misses_before: int = 0
    hurdle: Hurdle | None = None  # the paper's hurdles (azdsl.hurdles), when enabled


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
                           what: str) -> object:
    """A saved part of the state (FEC cache, hurdle) must be there exactly when the config
    turns its feature on; returns `saved`, StateError otherwise."""
    if (saved is None) != (fresh is None):
        raise st.StateError(f"{key}: must be " + (
            f"null: {feature_is} off in the config" if fresh is None else
            f"{what}: {feature_is} on in the config"))
    return saved

@dataclass
class Search:
    """One run: experiments until done, then the final evaluation."""

    config: Config
    seed: int
    backend: str = "vm"
    hooks: Hooks = field(default_factory=NoHooks)
    stop_requested: Callable[[], bool] = field(default=lambda: False)
    compiled: bool = True  # run children in the compiled loop where it can (azdsl.searchfast)

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

    def run(self) -> Result:
        """Run (or continue) until the final evaluation; returns the result."""
        while self.final is None:
            if self._current is None:
                self._current = self._new_experiment(len(self.experiments))
            self._run_experiment(self._current)
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

    def _new_experiment(self, index: int) -> _Experiment:
        fec = None
        if self.config.fec.enabled:
            fec = FecCache(self.config.fec.cache_size, self.config.fec.forget_every)
        return _Experiment(
            index=index,
            population=Population(self.config.population_size),
            init_rng=_generator(self.seed, index, _INIT),
            tournament=Uniforms(_generator(self.seed, index, _TOURNAMENT)),
            mutation_rng=_generator(self.seed, index, _MUTATION),
            eval_base=_seed64(self.seed, index, _EVALUATION),
            fec=fec,
            hurdle=self._hurdle(),
        )

    def _tasks(self, index: int) -> tuple[list[Task], list[Task]]:
        draw = _generator(self.seed, index, _TASKS)
        search = make_tasks(self.config.search_tasks, draw)
        select = make_tasks(self.config.select_tasks, draw)
        return search, select

    def _engine(self, tasks: list[Task]) -> Engine:
        fec = self.config.fec
        probe = ProbeSize(fec.num_train, fec.num_valid)
        if self.backend == "vm":
            return VmEngine(tasks, probe, self.sizes, self.config.max_abs_error)
        return BackendEngine(self.backend, tasks, probe, self.config.max_abs_error)

    def _scorer(self, tasks: list[Task], ex: _Experiment) -> Scorer:
        num_train = [len(t.y_train) for t in tasks]
        budget = None
        if self.baseline is not None and self.config.train_budget is not None:
            budget = TrainBudget(self.baseline, self.config.train_budget.threshold_factor,
                                 num_train)
        return Scorer(self._engine(tasks), num_train, fec=ex.fec,
                      memo_size=self.config.fec.structural_cache_size,
                      combine=self.config.combine, train_budget=budget, hurdle=ex.hurdle)

    def _hurdle(self) -> Hurdle | None:
        h = self.config.hurdles
        if not h.enabled:
            return None
        size = self.config.population_size
        return Hurdle(h.tasks, h.percentile, h.warmup or size, window=size)

    def _fast_loop(self, ex: _Experiment, scorer: Scorer, tasks: list[Task]) -> FastLoop:
        """The compiled loop on this experiment's state (azdsl.searchfast)."""
        mcfg = self.mutation
        capacity = 1
        held = [*ex.population.programs, *([ex.best_program] if ex.best_program else [])]
        for c in range(3):
            longest = max(mcfg.max_sizes[c], mcfg.init_sizes[c],
                          *(len(p.components[c]) for p in held))
            capacity += longest
        fec = self.config.fec
        budget = scorer.train_budget
        loop = FastLoop(mcfg, self.sizes, tasks, (fec.num_train, fec.num_valid),
                        self.config.max_abs_error, self.config.combine, ex.fec,
                        fec.structural_cache_size, budget.limits if budget else None, capacity)
        loop.load(ex.population, ex.tournament, ex.mutation_rng, ex.best_program,
                  ex.best_fitness)
        return loop

    def _first_program(self, ex: _Experiment) -> Program:
        kind = self.config.initial_population
        if kind == "random":
            return random_program(ex.init_rng, self.mutation)
        if kind == "empty":
            return empty_program(self.mutation)
        assert self.initial is not None
        return self.initial

    def _run_experiment(self, ex: _Experiment) -> None:
        search_tasks, select_tasks = self._tasks(ex.index)
        scorer = self._scorer(search_tasks, ex)
        config = self.config
        budget = config.budget
        pop = ex.population
        mcfg = self.mutation
        random_search = config.method == "random"
        tournament_size = config.tournament_size
        take = ex.tournament.take
        capacity = pop.capacity
        max_steps = budget.max_train_steps
        max_individuals = budget.max_individuals
        max_seconds = budget.max_seconds
        progress_every = config.progress_every
        checkpoint_every = config.checkpoint_every
        checkpoint_seconds = config.checkpoint_seconds
        start = time.monotonic()
        last_checkpoint = start
        last_checkpoint_individuals = ex.individuals
        steps_before = ex.train_steps
        stop_requested = self.stop_requested
        score = scorer.score
        mutation_rng = ex.mutation_rng
        programs = pop.programs
        tournament = pop.tournament
        add = pop.add
        eval_base = ex.eval_base
        mask = azrng.MASK
        individuals = ex.individuals
        stop_individuals = max_individuals if max_individuals else 2**62
        next_progress = ex.last_progress + progress_every
        # Clocks, signals and time-based checkpoints are looked at every `poll` children only.
        poll = 64
        next_poll = individuals

        fast: FastLoop | None = None
        fast_ok = self.compiled and ex.hurdle is None and searchfast.supported(
            config.method, self.backend, False, self.sizes)

        def sync() -> None:  # the compiled loop's arrays back into the Python objects
            if fast is not None:
                ex.best_program, ex.best_fitness = fast.export(pop, ex.tournament, mutation_rng)

        def checkpoint(now: float) -> None:  # bank the counters and clock, then save the state
            nonlocal start, steps_before, last_checkpoint, last_checkpoint_individuals
            ex.individuals = individuals
            ex.train_steps = steps_before + scorer.train_steps
            ex.seconds += now - start
            start = now
            steps_before = ex.train_steps
            scorer.train_steps = 0
            sync()
            self.hooks.checkpoint(self.state())
            last_checkpoint = time.monotonic()
            last_checkpoint_individuals = individuals

        while True:
            if individuals >= next_poll:
                next_poll = individuals + (2048 if fast is not None else poll)
                now = time.monotonic()
                if max_seconds and ex.seconds + (now - start) >= max_seconds:
                    break
                if stop_requested() or (
                    checkpoint_seconds and now - last_checkpoint >= checkpoint_seconds
                ):
                    checkpoint(now)
                    if stop_requested():
                        raise Interrupted
            if (max_steps and steps_before + scorer.train_steps >= max_steps) or (
                individuals >= stop_individuals
            ):
                break
            if fast_ok and len(programs) == capacity:
                if fast is None:
                    fast = self._fast_loop(ex, scorer, search_tasks)
                    next_poll = individuals
                limit = min(next_progress, next_poll, stop_individuals,
                            last_checkpoint_individuals + checkpoint_every
                            if checkpoint_every else stop_individuals) - individuals
                done, steps, _ = fast.run(max(1, limit), tournament_size, max_steps,
                                          max_individuals, eval_base, individuals,
                                          steps_before + scorer.train_steps)
                individuals += done
                scorer.train_steps += steps
                if individuals >= next_progress:
                    fast.report(pop, ex, scorer)
            else:
                if len(programs) < capacity:
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
            if individuals >= next_progress or individuals == capacity:
                ex.individuals = ex.last_progress = individuals
                next_progress = individuals + progress_every
                self._progress(ex, scorer, steps_before,
                               ex.seconds + (time.monotonic() - start))
            if checkpoint_every and individuals - last_checkpoint_individuals >= checkpoint_every:
                checkpoint(time.monotonic())
        sync()
        ex.individuals = individuals
        ex.train_steps = steps_before + scorer.train_steps
        ex.seconds += time.monotonic() - start
        if ex.individuals != ex.last_progress:
            ex.last_progress = ex.individuals
        self._progress(ex, scorer, ex.train_steps, ex.seconds, final=True)
        self._finish_experiment(ex, scorer, select_tasks)

    def _progress(self, ex: _Experiment, scorer: Scorer, steps_before: int, seconds: float,
                  final: bool = False) -> None:
        mean, std, best = ex.population.stats()
        fec = ex.fec
        record = {
            "experiment": ex.index + 1,
            "individuals": ex.individuals,
            "total_individuals": self.total_individuals + ex.individuals,
            "seconds": round(seconds, 3),
            "individuals_per_second": round(ex.individuals / seconds, 1) if seconds > 0 else 0,
            "best_fitness": best,
            "mean_fitness": mean,
            "std_fitness": std,
            "best_ever": ex.best_fitness,
            "train_steps": steps_before + (0 if final else scorer.train_steps),
            "fec_hits": fec.hits if fec else 0,
            "fec_misses": fec.misses if fec else 0,
            "memo_hits": scorer.memo.hits,
            "hurdle_stopped": ex.hurdle.stopped if ex.hurdle is not None else 0,
            "done": final,
        }
        self.progress_records += 1
        self.hooks.progress(record)
        if ex.best_program is not None and self.chosen is None:
            self.hooks.best(ex.best_program, ex.best_fitness)

    def _finish_experiment(self, ex: _Experiment, scorer: Scorer,
                           select_tasks: list[Task]) -> None:
        pop = ex.population
        if self.config.method == "random" or not pop.programs:
            candidate, search_fitness = ex.best_program, ex.best_fitness
        else:
            slot = pop.best()
            candidate, search_fitness = pop.programs[slot], pop.fitness[slot]
        assert candidate is not None
        select_seed = _seed64(self.seed, ex.index, _SELECT)
        simplified = simplify(candidate)
        select = evaluate(simplified, select_tasks, seed=select_seed, backend=self.backend,
                          max_abs_error=self.config.max_abs_error).fitness
        record = {
            "experiment": ex.index + 1,
            "individuals": ex.individuals,
            "train_steps": ex.train_steps,
            "seconds": round(ex.seconds, 3),
            "search_fitness": search_fitness,
            "select_fitness": select,
            "fec_hits": ex.fec.hits if ex.fec else 0,
            "fec_misses": ex.fec.misses if ex.fec else 0,
            "program": unparse(candidate),
            "simplified": unparse(simplified),
        }
        self.experiments.append(record)
        self.total_individuals += ex.individuals
        self.total_train_steps += ex.train_steps
        if select >= self.chosen_fitness:  # ties: the later candidate (as the original)
            self.chosen, self.chosen_fitness = candidate, select
        self.hooks.experiment(record)
        self.hooks.best(self.chosen, self.chosen_fitness)  # type: ignore[arg-type]
        self._current = None
        budget = self.config.budget
        done = (budget.sufficient_fitness is not None
                and self.chosen_fitness > budget.sufficient_fitness) or (
            budget.max_experiments != 0 and len(self.experiments) >= budget.max_experiments)
        if done:
            self._final()
        self.hooks.checkpoint(self.state())

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
        """An experiment's record (`_finish_experiment` writes it, the report prints it)."""
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
        """The experiment under way: the one after those finished."""
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
        if _present_as_configured(f, fresh, key, "FEC is", "the FEC cache") is None:
            return None
        assert f is not None and fresh is not None
        size = f.integer("cache_size", fresh.cache_size, fresh.cache_size)
        forget = f.integer("forget_every", fresh.forget_every, fresh.forget_every)
        keys = [st.integer(k, f"{f.key('keys')}[{i}]", 0, st.UINT64_MAX)
                for i, k in enumerate(f.items("keys", most=size))]
        if len(set(keys)) != len(keys):
            raise st.StateError(f"{f.key('keys')}: holds a key twice")
        fitness = [st.fitness(v, f"{f.key('fitness')}[{i}]")
                   for i, v in enumerate(f.items("fitness", length=len(keys)))]
        # An entry is forgotten when it has served forget_every hits.
        served = [st.integer(v, f"{f.key('served')}[{i}]", 0, forget - 1 if forget else MAX_INT)
                  for i, v in enumerate(f.items("served", length=len(keys)))]
        return FecCache.from_state({
            "cache_size": size, "forget_every": forget, "hits": f.integer("hits"),
            "misses": f.integer("misses"), "keys": keys, "fitness": fitness, "served": served})

    @staticmethod
    def _read_hurdle(f: st.Fields | None, key: str, fresh: Hurdle | None) -> Hurdle | None:
        """The hurdle: there exactly when the config enables hurdles, with its settings."""
        if _present_as_configured(f, fresh, key, "hurdles are", "the hurdle") is None:
            return None
        assert f is not None and fresh is not None
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


def evolve(config: Config, seed: int = 0, *, backend: str = "vm",
           hooks: Hooks | None = None) -> Result:
    """Run the experiments a config describes and return the chosen program and fitnesses."""
    return Search(config, seed, backend, hooks or NoHooks()).run()
