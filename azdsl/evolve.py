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
from azdsl.config import Config, TaskSet
from azdsl.errors import CheckError, ConfigError
from azdsl.evaluate import evaluate
from azdsl.fec import FecCache
from azdsl.hurdles import Hurdle
from azdsl.mutate import MutationConfig, empty_program, mutate, random_program
from azdsl.parse import parse
from azdsl.population import Population, Uniforms
from azdsl.printer import unparse
from azdsl.program import Program, check_for_dim
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
        if self.initial is not None:
            needs = self.initial.memory_needs()
            sizes = [max(a, b) for a, b in zip(sizes, needs.values(), strict=True)]
        self.sizes = (sizes[0], sizes[1], sizes[2])

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
        for c in range(3):
            longest = max(mcfg.max_sizes[c], mcfg.init_sizes[c],
                          *(len(p.components[c]) for p in ex.population.programs))
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

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from `state` (from `state()` of a search with the same config and seed)."""
        if state.get("format") != STATE_FORMAT or state.get("version") != STATE_VERSION:
            raise ValueError("not an azdsl search state of a known version")
        if state["seed"] != self.seed:
            raise ValueError(f"the state is of seed {state['seed']}, not {self.seed}")
        parsed: dict[str, Program] = {}

        def program(text: str) -> Program:
            found = parsed.get(text)
            if found is None:
                found = parsed[text] = parse(text, "<checkpoint>")
            return found

        self.experiments = list(state["experiments"])
        self.chosen = program(state["chosen"]) if state["chosen"] is not None else None
        self.chosen_fitness = float(state["chosen_fitness"])
        self.progress_records = int(state["progress_records"])
        self.total_individuals = int(state["total_individuals"])
        self.total_train_steps = int(state["total_train_steps"])
        self.final = state["final"]
        cur = state["current"]
        if cur is None:
            self._current = None
            return
        ex = self._new_experiment(int(cur["index"]))
        unique = [program(text) for text in cur["programs"]]
        ex.population.programs = [unique[s] for s in cur["slots"]]
        ex.population.fitness = [float(f) for f in cur["fitness"]]
        ex.population.next_slot = int(cur["next_slot"])
        if len(ex.population.programs) != len(ex.population.fitness) or len(
            ex.population.programs) > ex.population.capacity:
            raise ValueError("the population in the state does not fit the config")
        ex.init_rng.bit_generator.state = cur["init_rng"]
        ex.tournament = Uniforms.from_state(cur["tournament"])
        ex.mutation_rng.bit_generator.state = cur["mutation_rng"]
        ex.eval_base = int(cur["eval_base"])
        ex.fec = FecCache.from_state(cur["fec"]) if cur["fec"] is not None else None
        if cur.get("hurdle") is not None:
            ex.hurdle = Hurdle.from_state(cur["hurdle"])
        ex.individuals = int(cur["individuals"])
        ex.train_steps = int(cur["train_steps"])
        ex.seconds = float(cur["seconds"])
        ex.best_program = program(cur["best_program"]) if cur["best_program"] else None
        ex.best_fitness = float(cur["best_fitness"])
        ex.last_progress = int(cur["last_progress"])
        self._current = ex


def evolve(config: Config, seed: int = 0, *, backend: str = "vm",
           hooks: Hooks | None = None) -> Result:
    """Run the experiments a config describes and return the chosen program and fitnesses."""
    return Search(config, seed, backend, hooks or NoHooks()).run()
