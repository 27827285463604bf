"""Islands of the search: regularized-evolution populations run in segments between barriers.

An island is a Search (azdsl.search.evolve) limited to the search phase of one experiment: it runs
its share of the experiment's budget in segments that end at fixed individual counts (the
migration barriers), takes in immigrants as program text with their ancestry, and reports a
Summary (counters, population statistics, its best programs as text, with their ancestry).
The experiment driver (azdsl.scale.parallel) does the selection and final scoring. Island 0 draws
from the root seed's streams, so a run of one island is the single-process run; island i > 0
draws from streams spawned for it (SeedSequence spawn keys (experiment, concern, i)) and tags
its lineage ids with i, so they stay unique as migrants carry their ancestry along. All
islands of an experiment search the same tasks. An IslandHost holds the islands of one
worker (a process, a Ray actor, or the driver itself) and answers the driver's requests;
nothing it sends is a pickled program.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from azdsl import state as st
from azdsl.errors import ConfigError
from azdsl.extend import load_extensions
from azdsl.language.ops import table_digest
from azdsl.language.parse import parse
from azdsl.language.printer import unparse
from azdsl.language.program import Program
from azdsl.running.fitness import fitness_named
from azdsl.search.config import Budget, Config
from azdsl.search.engine import Keys
from azdsl.search.evolve import ProgramReader, Search, seed64
from azdsl.search.lineage import Ancestry

# A program as canonical text, its fitness on the search tasks, and its ancestry (Step rows).
Migrant = tuple[str, float, list[Any]]

# Concerns of an island's own streams (spawn key (experiment, concern, island)).
_INIT, _TOURNAMENT, _MUTATION, _EVALUATION = range(4)


def island_budget(budget: Budget, islands: int) -> Budget:
    """One island's share of an experiment's budget: ceil(1/N) of the train steps and the
    individuals; a time limit holds for every island (they run at the same time)."""
    return replace(budget, max_train_steps=-(-budget.max_train_steps // islands),
                   max_individuals=-(-budget.max_individuals // islands))


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
    candidate_first: str | None  # the first program of the candidate's ancestry
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
        candidate_first = f.get("candidate_first")
        if candidate_first is not None:
            program(candidate_first, f.key("candidate_first"))
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
            candidate_first=candidate_first,
            emigrants=tuple(migrant(m, f"{f.key('emigrants')}[{i}]", program)
                            for i, m in enumerate(f.items("emigrants"))),
            fec_hits=f.integer("fec_hits"), fec_misses=f.integer("fec_misses"),
            memo_hits=f.integer("memo_hits"), hurdle_stopped=f.integer("hurdle_stopped"))


def migrant(value: Any, key: str, program: ProgramReader) -> Migrant:
    """A [program text, fitness, ancestry] triple of a checkpoint, checked."""
    text, fitness, steps = st.items(value, key, length=3)
    program(text, f"{key}[0]")
    Ancestry.from_json(steps, f"{key}[2]")
    return text, st.fitness(fitness, f"{key}[1]"), steps


# ---- the worker side ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSpec:
    """What every worker needs to build its islands (sent once; a Config pickles as data)."""

    config: Config
    seed: int
    backend: str
    islands: int
    migrants: int
    # The driver's user ops (azdsl.language.ops.table_digest): a worker must number them alike.
    ops_digest: str = field(default_factory=table_digest)


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


def island_search(spec: RunSpec) -> Search:
    """The Search of one island of a run: its share of the budget, no held-out tasks."""
    config = replace(spec.config, budget=island_budget(spec.config.budget, spec.islands))
    return Search(config, spec.seed, spec.backend, island=True)


def island_keys(seed: int, experiment: int, island: int) -> Keys:
    """The streams of island `island` > 0 in an experiment (island 0 draws from the root
    seed's, so that one island is the single-process search)."""
    init, tournament, mutation, evaluation = (
        seed64(seed, experiment, concern, island)
        for concern in (_INIT, _TOURNAMENT, _MUTATION, _EVALUATION))
    return Keys(init, tournament, mutation, evaluation, tag=island)


class Island:
    """One island: its Search, run a segment (up to a barrier) at a time."""

    def __init__(self, spec: RunSpec, index: int) -> None:
        self.spec = spec
        self.index = index
        self.search = island_search(spec)

    def begin(self, experiment: int) -> None:
        """Start the search of an experiment (fresh population, the experiment's tasks)."""
        keys = island_keys(self.spec.seed, experiment, self.index) if self.index else None
        self.search.begin(experiment, keys)

    def step(self, target: int, immigrants: Sequence[Migrant]) -> Summary:
        """Take in the immigrants (they replace the oldest members), search until `target`
        individuals or the budget, and report."""
        search = self.search
        search.inject([(parse(text, "<immigrant>"), float(fitness),
                        Ancestry.from_json(steps, "<immigrant>"))
                       for text, fitness, steps in immigrants])
        spent = search.advance(target)
        # The candidate's lineage is what the driver records once every island is spent.
        standing = search.summary(ancestry=spent)

        def text(program: Program, fitness: float, ancestry: Ancestry | None) -> Migrant:
            return unparse(program), fitness, ancestry.to_json() if ancestry else []

        best = standing.best_ever_program
        candidate = standing.candidate
        first = standing.candidate_first
        return Summary(
            island=self.index, done=standing.spent, individuals=standing.individuals,
            train_steps=standing.train_steps, seconds=standing.seconds, size=standing.size,
            mean=standing.mean, std=standing.std, best=standing.best,
            best_ever=standing.best_ever,
            best_ever_program=unparse(best) if best is not None else None,
            candidate=text(*candidate, standing.candidate_ancestry)
            if candidate is not None else None,
            candidate_first=unparse(first) if first is not None else None,
            emigrants=tuple(text(*m) for m in search.fittest(self.spec.migrants)),
            fec_hits=standing.fec_hits, fec_misses=standing.fec_misses,
            memo_hits=standing.memo_hits, hurdle_stopped=standing.hurdle_stopped)


class IslandHost:
    """The islands of one worker; `handle` answers one request of the driver."""

    def __init__(self, spec: RunSpec, islands: Sequence[int]) -> None:
        self.spec = spec
        self.islands: dict[int, Island] = {}
        # A worker process starts with the built-in ops: the config's extensions add the rest.
        # A failure is the answer to the first request (a worker that dies is only "lost").
        self.failure: ConfigError | None = None
        try:
            load_extensions(spec.config.extensions)
            if spec.config.fitness is not None:  # registered outside them: not here
                fitness_named(spec.config.fitness)
            if table_digest() != spec.ops_digest:
                raise ConfigError("this worker's ops differ from the driver's: ops registered "
                                  "outside the config's [extensions] modules do not reach "
                                  "workers (docs/extending.md)")
        except ConfigError as exc:
            self.failure = exc
            return
        self.islands = {i: Island(spec, i) for i in islands}

    def handle(self, request: Request) -> Any:
        if self.failure is not None:
            raise self.failure
        if isinstance(request, Step):
            return {i: island.step(request.target, request.immigrants.get(i, ()))
                    for i, island in self.islands.items()}
        if isinstance(request, Begin):
            for island in self.islands.values():
                island.begin(request.experiment)
            return None
        if isinstance(request, Load):
            for i, state in request.states.items():
                self.islands[i].search.restore(state)
            return None
        if isinstance(request, States):
            return {i: island.search.state() for i, island in self.islands.items()}
        if isinstance(request, Pid):
            return os.getpid()
        raise TypeError(f"unknown request {request!r}")
