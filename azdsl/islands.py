"""Islands of the search: regularized-evolution populations run in segments between barriers.

An island is a Search (azdsl.evolve) limited to the search phase of one experiment: it runs
its share of the experiment's budget in segments that end at fixed individual counts (the
migration barriers), takes in immigrants as program text, and reports a Summary (counters,
population statistics, its best programs as text). The experiment driver (azdsl.parallel)
does the selection and final scoring. Island 0 draws from the root seed's streams, so a run
of one island is the single-process run; island i > 0 draws from streams spawned for it
(SeedSequence spawn keys (experiment, concern, i)). All islands of an experiment search the
same tasks. An IslandHost holds the islands of one worker (a process, a Ray actor, or the
driver itself) and answers the driver's requests; nothing it sends is a pickled program.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from azdsl import searchfast
from azdsl import state as st
from azdsl.config import Budget, Config
from azdsl.evolve import ProgramReader, Saved, Search, _Experiment
from azdsl.parse import parse
from azdsl.population import Uniforms
from azdsl.printer import unparse
from azdsl.program import Program
from azdsl.scorer import Scorer
from azdsl.searchfast import FastLoop
from azdsl.tasks import Task

Migrant = tuple[str, float]  # a program as canonical text, and its fitness on the search tasks

# Concerns of an island's own streams (spawn key (experiment, concern, island)).
_INIT, _TOURNAMENT, _MUTATION, _EVALUATION = range(4)


def island_budget(budget: Budget, islands: int) -> Budget:
    """One island's share of an experiment's budget: ceil(1/N) of the train steps and the
    individuals; a time limit holds for every island (they run at the same time)."""
    return replace(budget, max_train_steps=-(-budget.max_train_steps // islands),
                   max_individuals=-(-budget.max_individuals // islands))


def _stream(seed: int, experiment: int, concern: int, island: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(entropy=seed, spawn_key=(experiment % 2**32, concern, island))


@dataclass(frozen=True)
class Summary:
    """What an island reports at a barrier (JSON-ready through `to_json`)."""

    island: int
    done: bool  # its share of the experiment's budget is spent
    individuals: int
    train_steps: int
    seconds: float
    size: int  # population statistics: members, mean, std and best fitness
    mean: float
    std: float
    best: float
    best_ever: float  # the best child this island evaluated, and its text
    best_ever_program: str | None
    candidate: Migrant | None  # what the island offers to the experiment's selection
    emigrants: tuple[Migrant, ...]  # its best members, best first
    fec_hits: int = 0
    fec_misses: int = 0
    memo_hits: int = 0
    hurdle_stopped: int = 0

    def to_json(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["candidate"] = list(self.candidate) if self.candidate is not None else None
        data["emigrants"] = [list(m) for m in self.emigrants]
        return data

    @staticmethod
    def from_json(data: Any, key: str, program: ProgramReader) -> Summary:
        """A summary `to_json` wrote (in a checkpoint: checked as user input, StateError
        naming the field otherwise); `program` checks each program text."""
        f = st.Fields(data, key)
        f.only(tuple(field.name for field in fields(Summary)))
        best_ever_program = f.get("best_ever_program")
        if best_ever_program is not None:
            program(best_ever_program, f.key("best_ever_program"))
        candidate = f.get("candidate")
        return Summary(
            island=f.integer("island"), done=f.boolean("done"),
            individuals=f.integer("individuals"), train_steps=f.integer("train_steps"),
            seconds=f.number("seconds", 0.0), size=f.integer("size"), mean=f.fitness("mean"),
            std=f.number("std", 0.0), best=f.fitness("best"),
            best_ever=f.fitness("best_ever", unset=True),
            best_ever_program=best_ever_program,
            candidate=migrant(candidate, f.key("candidate"), program)
            if candidate is not None else None,
            emigrants=tuple(migrant(m, f"{f.key('emigrants')}[{i}]", program)
                            for i, m in enumerate(f.items("emigrants"))),
            fec_hits=f.integer("fec_hits"), fec_misses=f.integer("fec_misses"),
            memo_hits=f.integer("memo_hits"), hurdle_stopped=f.integer("hurdle_stopped"))


def migrant(value: Any, key: str, program: ProgramReader) -> Migrant:
    """A [program text, fitness] pair of a checkpoint, checked."""
    text, fitness = st.items(value, key, length=2)
    program(text, f"{key}[0]")
    return text, st.fitness(fitness, f"{key}[1]")


@dataclass
class IslandSearch(Search):
    """A Search that runs one experiment's search phase in segments (see the module doc)."""

    island: int = 0
    islands: int = 1
    _cached_tasks: tuple[int, tuple[list[Task], list[Task]]] | None = field(default=None,
                                                                              repr=False)
    _cached_scorer: tuple[_Experiment, Scorer] | None = field(default=None, repr=False)
    _fast: tuple[_Experiment, FastLoop] | None = field(default=None, repr=False)
    _stale: bool = field(default=False, repr=False)  # the loop's arrays are ahead

    def __post_init__(self) -> None:
        super().__post_init__()
        self.budget = island_budget(self.config.budget, self.islands)
        # The driver checkpoints and reports progress; the island never does on its own.
        self.island_config = replace(self.config, budget=self.budget, checkpoint_every=0,
                                     checkpoint_seconds=0.0, progress_every=2**62)
        self.config = self.island_config

    def _build_held_out(self) -> None:
        pass  # the driver scores on held-out tasks (its Search built them), an island never

    # ---- what the driver asks ---------------------------------------------------------------

    def begin(self, experiment: int) -> None:
        """Start the search of an experiment (fresh population, the experiment's tasks)."""
        self._current = self._new_experiment(experiment)

    def advance(self, target: int) -> bool:
        """Search until `target` individuals or the budget; True once the budget is spent."""
        ex = self._experiment()
        if self.spent(ex) or ex.individuals >= target:
            return self.spent(ex)
        limit = min(target, self.budget.max_individuals) if self.budget.max_individuals else target
        if not self._compiled_ok(ex):
            self._python(ex, limit)
            return self.spent(ex)
        pop = ex.population
        if not pop.full:  # Search's Python loop fills the population, then stops
            self._python(ex, min(limit, ex.individuals + pop.capacity - len(pop.programs)))
        if pop.full and not self.spent(ex) and ex.individuals < limit:
            self._compiled(ex, limit)
        return self.spent(ex)

    def spent(self, ex: _Experiment) -> bool:
        b = self.budget  # the test at the top of Search's loop, on this island's share
        return bool((b.max_train_steps and ex.train_steps >= b.max_train_steps)
                    or (b.max_individuals and ex.individuals >= b.max_individuals)
                    or (b.max_seconds and ex.seconds >= b.max_seconds))

    def receive(self, migrants: Sequence[Migrant]) -> None:
        """Immigrants replace the oldest members (they fill free slots while P is not full)."""
        ex = self._experiment()
        for text, fitness in migrants:
            program = parse(text, "<immigrant>")
            fast = self._live_loop(ex)
            if fast is not None and _inject(fast, program, float(fitness)):
                self._stale = True
                continue
            self._sync()  # no room in the loop's rows: continue from the Python objects
            self._fast = None
            ex.population.add(program, float(fitness))

    def summary(self, emigrants: int) -> Summary:
        ex = self._experiment()
        pop = ex.population
        scorer = self._cached_scorer[1] if self._cached_scorer is not None else None
        fast = self._live_loop(ex)
        if fast is not None:
            fast.report(pop, ex, scorer)  # fitness, best so far and counters (not programs)
        mean, std, best = pop.stats()
        order = sorted(range(len(pop.fitness)), key=lambda s: (-pop.fitness[s], s))

        def member(slot: int) -> Migrant:
            program = _member(fast, slot) if fast is not None else pop.programs[slot]
            return unparse(program), pop.fitness[slot]

        if self.config.method == "random" or not pop.programs:  # as Search._finish_experiment
            candidate = ((unparse(ex.best_program), ex.best_fitness)
                         if ex.best_program is not None else None)
        else:
            candidate = member(pop.best())
        return Summary(
            island=self.island, done=self.spent(ex), individuals=ex.individuals,
            train_steps=ex.train_steps, seconds=ex.seconds, size=len(pop.fitness), mean=mean,
            std=std, best=best, best_ever=ex.best_fitness,
            best_ever_program=unparse(ex.best_program) if ex.best_program else None,
            candidate=candidate, emigrants=tuple(member(s) for s in order[:emigrants]),
            fec_hits=ex.fec.hits if ex.fec else 0, fec_misses=ex.fec.misses if ex.fec else 0,
            memo_hits=scorer.memo.hits if scorer is not None else 0,
            hurdle_stopped=ex.hurdle.stopped if ex.hurdle is not None else 0,
        )

    def state(self) -> dict[str, Any]:
        self._sync()
        return super().state()

    def read_state(self, state: Any, where: str = "") -> Saved:
        saved = super().read_state(state, where)
        if saved.current is None:
            raise st.StateError(f"{st.Fields(state, where).key('current')}: must be the "
                                "island's experiment")
        return saved

    def _read_index(self, cur: st.Fields, finished: int) -> int:
        return cur.integer("index")  # an island keeps no finished experiments

    # ---- the two loops ------------------------------------------------------------------------

    def _python(self, ex: _Experiment, limit: int) -> None:
        """Search's own loop, stopped at `limit` individuals by a budget it reads."""
        self.config = replace(self.island_config,
                              budget=replace(self.budget, max_individuals=limit))
        try:
            self._run_experiment(ex)  # ends at `limit` or a real budget limit
        finally:
            self.config = self.island_config

    def _compiled_ok(self, ex: _Experiment) -> bool:
        return self.compiled and ex.hurdle is None and searchfast.supported(
            self.config.method, self.backend, False, self.sizes)

    def _compiled(self, ex: _Experiment, limit: int) -> None:
        """The compiled loop (azdsl.searchfast), kept between segments: Search's loop would
        write its arrays back into Python objects and reload them at every barrier (about a
        second each on the demo); here that happens only when a checkpoint needs the state.
        It runs the same children as Search's loop: the same kernel, budget and seeds."""
        fast = self._live_loop(ex)
        if fast is None:
            tasks = self._tasks(ex.index)[0]
            fast = self._fast_loop(ex, self._scorer(tasks, ex), tasks)
            self._fast = (ex, fast)
        b = self.budget
        start = time.monotonic()
        self._stale = True
        try:
            while ex.individuals < limit:
                if b.max_seconds and ex.seconds + time.monotonic() - start >= b.max_seconds:
                    break
                done, steps, stop = fast.run(min(limit - ex.individuals, 4096),
                                             self.config.tournament_size, b.max_train_steps,
                                             b.max_individuals, ex.eval_base, ex.individuals,
                                             ex.train_steps)
                ex.individuals += done
                ex.train_steps += steps
                if stop:
                    break
        finally:
            ex.seconds += time.monotonic() - start

    def _live_loop(self, ex: _Experiment) -> FastLoop | None:
        return self._fast[1] if self._fast is not None and self._fast[0] is ex else None

    def _sync(self) -> None:
        """Write the compiled loop's arrays back into the experiment's Python objects."""
        ex = self._current
        fast = self._live_loop(ex) if ex is not None else None
        if fast is not None and ex is not None and self._stale:
            ex.best_program, ex.best_fitness = fast.export(ex.population, ex.tournament,
                                                           ex.mutation_rng)
        self._stale = False

    def _experiment(self) -> _Experiment:
        if self._current is None:
            raise RuntimeError(f"island {self.island} has no experiment under way")
        return self._current

    # ---- Search's steps, specialised ---------------------------------------------------------

    def _new_experiment(self, index: int) -> _Experiment:
        ex = super()._new_experiment(index)
        if self.island:  # island 0 keeps the root streams: one island == one process
            def generator(concern: int) -> np.random.Generator:
                sequence = _stream(self.seed, index, concern, self.island)
                return np.random.Generator(np.random.PCG64(sequence))

            ex.init_rng = generator(_INIT)
            ex.tournament = Uniforms(generator(_TOURNAMENT))
            ex.mutation_rng = generator(_MUTATION)
            low, high = _stream(self.seed, index, _EVALUATION, self.island).generate_state(
                2, np.uint32).tolist()
            ex.eval_base = int(low) | (int(high) << 32)
        return ex

    def _tasks(self, index: int) -> tuple[list[Task], list[Task]]:
        if self._cached_tasks is None or self._cached_tasks[0] != index:
            self._cached_tasks = (index, super()._tasks(index))
        return self._cached_tasks[1]

    def _scorer(self, tasks: list[Task], ex: _Experiment) -> Scorer:
        # One scorer per experiment (its memo and compiled engine survive the segments); a
        # restored island gets a new one. The memo never changes a result.
        cached = self._cached_scorer
        if cached is None or cached[0] is not ex or cached[1].fec is not ex.fec:
            cached = self._cached_scorer = (ex, super()._scorer(tasks, ex))
        cached[1].train_steps = 0  # Search counts this segment's steps from zero
        return cached[1]

    def _finish_experiment(self, ex: _Experiment, scorer: Scorer,
                           select_tasks: list[Task]) -> None:
        pass  # the driver selects over all islands


# A member of the compiled loop's population, and an immigrant written into it (its arrays:
# pop = (rows, literals, component sizes, fitness), ring = the oldest slot; azdsl.searchfast).


def _member(fast: FastLoop, slot: int) -> Program:
    rows, lits, sizes, _ = fast.pop
    return searchfast.decode(rows[slot], lits[slot], sizes[slot])


def _inject(fast: FastLoop, program: Program, fitness: float) -> bool:
    """Replace the oldest member, as Population.add does; False when it does not fit."""
    rows, lits, sizes, values = fast.pop
    if sum(len(c) for c in program.components) > fast.capacity:
        return False
    slot = int(fast.ring[0])
    searchfast.encode(program, rows[slot], lits[slot], sizes[slot])
    values[slot] = fitness
    fast.ring[0] = (slot + 1) % values.shape[0]
    return True


# ---- the worker side ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSpec:
    """What every worker needs to build its islands (sent once; a Config pickles as data)."""

    config: Config
    seed: int
    backend: str
    islands: int
    migrants: int


@dataclass(frozen=True)
class Begin:
    experiment: int


@dataclass(frozen=True)
class Load:
    states: dict[int, dict[str, Any]]  # island -> Search.state() at the last checkpoint


@dataclass(frozen=True)
class Step:
    """Take in the immigrants, then search every island to `target` individuals."""

    target: int
    immigrants: dict[int, tuple[Migrant, ...]]

    def only(self, islands: Sequence[int]) -> Step:
        return Step(self.target, {i: m for i, m in self.immigrants.items() if i in islands})


@dataclass(frozen=True)
class States:
    pass


@dataclass(frozen=True)
class Pid:
    pass


Request = Begin | Load | Step | States | Pid


class IslandHost:
    """The islands of one worker; `handle` answers one request of the driver."""

    def __init__(self, spec: RunSpec, islands: Sequence[int]) -> None:
        self.spec = spec
        self.islands = {i: IslandSearch(spec.config, spec.seed, spec.backend, island=i,
                                        islands=spec.islands) for i in islands}

    def handle(self, request: Request) -> Any:
        if isinstance(request, Step):
            replies = {}
            for i, island in self.islands.items():
                immigrants = request.immigrants.get(i, ())
                if immigrants:
                    island.receive(immigrants)
                island.advance(request.target)
                replies[i] = island.summary(self.spec.migrants)
            return replies
        if isinstance(request, Begin):
            for island in self.islands.values():
                island.begin(request.experiment)
            return None
        if isinstance(request, Load):
            for i, state in request.states.items():
                self.islands[i].restore(state)
            return None
        if isinstance(request, States):
            return {i: island.state() for i, island in self.islands.items()}
        if isinstance(request, Pid):
            return os.getpid()
        raise TypeError(f"unknown request {request!r}")
