"""Islands on local processes or on Ray: the experiment driver over N island populations.

Every experiment runs N islands (azdsl.scale.islands) in lockstep: each searches until the next
barrier (every `migrate_every` of its own individuals), then the driver sends each island the
best `migrants` members of its ring neighbour (island i receives from island i-1), as program
text; they replace its oldest members. When every island has spent its share of the budget,
the best island candidate (the first island on ties) is scored on T_select, exactly as a
single-process run scores its best; experiments repeat and T_final scores the chosen program.

Results depend on the seed, the config and the island settings, never on the number of
workers, the backend (processes, Ray, the driver itself) or the timing: the islands only
meet at barriers, each island's state there is a function of its seed streams and the
immigrants it received, and one island is exactly the single-process search.

Faults: the driver checkpoints every island (Search.state() JSON) every `checkpoint_seconds`
or `checkpoint_every` individuals, and logs the barrier requests since. A lost worker is
replaced and its islands are restored from that checkpoint and replayed through the log, so
the run ends as it would have without the fault. The run folder holds the same checkpoint
(written atomically), so `azdsl resume DIR` continues after a killed driver.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from azdsl import state as st
from azdsl.errors import ConfigError
from azdsl.language.parse import parse
from azdsl.language.program import Program
from azdsl.scale.islands import (
    Begin,
    Load,
    Migrant,
    Request,
    RunSpec,
    States,
    Step,
    Summary,
    island_search,
    migrant,
)
from azdsl.scale.workers import LOST, Pool, WorkersLost, assignment, local_cores
from azdsl.search.config import Config
from azdsl.search.evolve import Hooks, Interrupted, NoHooks, Result, Search, Standing
from azdsl.search.lineage import Ancestry

STATE_FORMAT = "azdsl-island-run"
STATE_VERSION = 1
MAX_RESTARTS = 3  # of one worker within one request, before the run gives up


@dataclass(frozen=True)
class IslandSettings:
    """What shapes the result: the island count and the migration schedule."""

    islands: int
    migrate_every: int = 10_000  # each island's individuals between barriers
    migrants: int = 1  # members each island sends to its ring neighbour at a barrier

    def __post_init__(self) -> None:
        if self.islands < 1 or self.migrate_every < 1 or self.migrants < 0:
            raise ConfigError("islands and migrate_every must be at least 1, migrants at "
                              "least 0")

    def to_json(self) -> dict[str, int]:
        return {"islands": self.islands, "migrate_every": self.migrate_every,
                "migrants": self.migrants}

    @staticmethod
    def from_json(data: Any, key: str = "settings") -> IslandSettings:
        """Settings `to_json` wrote; StateError naming the field for anything else."""
        f = st.Fields(data, key)
        return IslandSettings(f.integer("islands", 1), f.integer("migrate_every", 1),
                              f.integer("migrants"))


@dataclass(frozen=True)
class Execution:
    """Where the islands run; never changes a result."""

    workers: int | None = None  # None: every core here, or every CPU of the Ray cluster
    ray: str | None = None  # None: local processes; "local", "auto" or a cluster address


def make_pool(spec: RunSpec, execution: Execution) -> Pool:
    """The pool an Execution asks for (one worker: the driver's own process)."""
    if execution.ray is not None:
        from azdsl.scale.ray_pool import RayPool

        return RayPool(spec, execution.ray, execution.workers)
    from azdsl.scale.local_pool import InlinePool, LocalPool

    workers = execution.workers or local_cores()
    islands = assignment(spec.islands, workers)
    if len(islands) == 1:
        return InlinePool(spec, islands)
    return LocalPool(spec, islands)


@dataclass
class _Experiment:
    """The driver's view of the experiment under way."""

    index: int
    barrier: int = 0
    done: list[bool] = field(default_factory=list)
    summaries: list[Summary | None] = field(default_factory=list)
    pending: list[tuple[Migrant, ...]] = field(default_factory=list)  # immigrants
    seconds: float = 0.0  # wall time before this session
    log: list[Step] = field(default_factory=list)  # barrier requests since the checkpoint
    checkpoint: dict[str, Any] | None = None  # the last snapshot (None: the start)


class _DriverHooks:
    """The driver Search's hooks: its checkpoints become the island run's checkpoints."""

    def __init__(self, run: IslandRun) -> None:
        self.run = run

    def progress(self, record: dict[str, Any]) -> None:
        self.run.hooks.progress(record)

    def checkpoint(self, state: dict[str, Any]) -> None:
        self.run.hooks.checkpoint(self.run.state())

    def best(self, program: Program, fitness: float) -> None:
        self.run.hooks.best(program, fitness)

    def experiment(self, record: dict[str, Any]) -> None:
        self.run.hooks.experiment(record)


class IslandRun:
    """A run of N islands; `run()` returns the same Result type as Search.run()."""

    def __init__(self, config: Config, seed: int, settings: IslandSettings, *,
                 backend: str = "vm", hooks: Hooks | None = None,
                 execution: Execution | None = None,
                 pool_factory: Callable[[RunSpec], Pool] | None = None) -> None:
        self.config = config
        self.settings = settings
        self.hooks: Hooks = hooks or NoHooks()
        self.execution = execution or Execution()
        self.spec = RunSpec(config, seed, backend, settings.islands, settings.migrants)
        self.pool_factory = pool_factory or (lambda spec: make_pool(spec, self.execution))
        self.stop_requested: Callable[[], bool] = lambda: False
        self.driver = Search(config, seed, backend, _DriverHooks(self))
        self.progress_records = 0
        self.restarts = 0  # workers replaced so far (faults survived)
        self._exp: _Experiment | None = None
        self._pool: Pool | None = None
        self._islands: list[list[int]] = []
        self._best: Program | None = None  # the best program reported to the hooks

    # ---- what drive() and the report read ---------------------------------------------------

    @property
    def seed(self) -> int:
        return self.driver.seed

    @property
    def backend(self) -> str:
        return self.driver.backend

    @property
    def final(self) -> dict[str, Any] | None:
        return self.driver.final

    @property
    def total_individuals(self) -> int:
        return self.driver.total_individuals

    def result(self) -> Result:
        return self.driver.result()

    def worker_pids(self) -> list[int]:
        return self._pool.pids() if self._pool is not None else []

    # ---- running ----------------------------------------------------------------------------

    def run(self) -> Result:
        """Run (or continue) until the final evaluation; the workers are closed at the end."""
        try:
            while self.driver.final is None:
                if self._exp is None:
                    self._begin(len(self.driver.experiments))
                self._search()
                self._finish()
        finally:
            self.close()
        return self.driver.result()

    def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.close()

    def _open(self) -> None:
        """Start the workers and bring their islands to the current barrier."""
        if self._pool is not None:
            return
        self._pool = self.pool_factory(self.spec)
        self._islands = self._pool.islands
        for worker in range(len(self._islands)):
            if not self._revive(worker):
                self._replace(worker)

    def _begin(self, index: int) -> None:
        n = self.settings.islands
        self._exp = _Experiment(index, done=[False] * n, summaries=[None] * n,
                                pending=[()] * n)
        if self._pool is not None:
            self._call({w: Begin(index) for w in range(len(self._islands))})

    def _revive(self, worker: int) -> bool:
        """A fresh worker's islands: the last checkpoint (or the experiment's start), then
        the barrier requests logged since, replayed; False when it is lost on the way."""
        exp = self._exp
        if exp is None:
            return True
        assert self._pool is not None
        islands = self._islands[worker]
        requests: list[Request] = []
        if exp.checkpoint is None:
            requests.append(Begin(exp.index))
        else:
            states = exp.checkpoint["states"]
            requests.append(Load({i: states[i] for i in islands}))
        requests += [step.only(islands) for step in exp.log]
        return all(self._pool.call({worker: request})[worker] is not LOST
                   for request in requests)

    def _replace(self, worker: int) -> None:
        """A fresh worker in place of a lost one, revived (tried MAX_RESTARTS times)."""
        assert self._pool is not None
        for _ in range(MAX_RESTARTS):
            self.restarts += 1
            print(f"azdsl: worker {worker} (islands {self._islands[worker]}) was lost; "
                  "restarting it from the last checkpoint", file=sys.stderr)
            self._pool.restart(worker)
            if self._revive(worker):
                return
        raise self._lost([worker])

    def _lost(self, workers: list[int]) -> WorkersLost:
        islands = sorted(i for w in workers for i in self._islands[w])
        return WorkersLost(f"worker process(es) {workers} (islands {islands}) lost "
                           f"{MAX_RESTARTS + 1} times in a row; the run stopped at its last "
                           "checkpoint")

    def _call(self, requests: Mapping[int, Request]) -> dict[int, Any]:
        """Requests to workers; a lost worker is replaced, revived and asked again."""
        assert self._pool is not None
        replies: dict[int, Any] = {}
        todo = dict(requests)
        for _ in range(MAX_RESTARTS + 1):
            got = self._pool.call(todo)
            replies.update((w, reply) for w, reply in got.items() if reply is not LOST)
            todo = {w: todo[w] for w, reply in got.items() if reply is LOST}
            if not todo:
                return replies
            for worker in todo:
                self._replace(worker)
        raise self._lost(sorted(todo))

    def _search(self) -> None:
        """Barriers until every island has spent its budget (or a stop is requested)."""
        exp = self._exp
        assert exp is not None
        self._open()
        config = self.config
        start = time.monotonic()
        last_checkpoint, individuals_then = start, self._individuals()
        while not all(exp.done):
            step = Step((exp.barrier + 1) * self.settings.migrate_every,
                        {i: m for i, m in enumerate(exp.pending) if m})
            replies = self._call({w: step.only(islands)
                                  for w, islands in enumerate(self._islands)})
            for reply in replies.values():
                for i, summary in reply.items():
                    exp.summaries[i] = summary
                    exp.done[i] = summary.done
            exp.barrier += 1
            exp.log.append(step)
            exp.pending = self._migrants()
            now = time.monotonic()
            self._progress(exp.seconds + now - start)
            stop = self.stop_requested()
            if stop or (config.checkpoint_every and self._individuals() - individuals_then
                        >= config.checkpoint_every) or (
                config.checkpoint_seconds and now - last_checkpoint >= config.checkpoint_seconds
            ):
                exp.seconds += now - start
                start = now
                self._checkpoint()
                last_checkpoint, individuals_then = time.monotonic(), self._individuals()
                if stop:
                    raise Interrupted
        exp.seconds += time.monotonic() - start

    def _migrants(self) -> list[tuple[Migrant, ...]]:
        """Ring migration: island i takes island i-1's best members, unless it is done."""
        exp = self._exp
        assert exp is not None
        n = self.settings.islands
        pending: list[tuple[Migrant, ...]] = [()] * n
        if n == 1:
            return pending
        for i in range(n):
            source = exp.summaries[(i - 1) % n]
            if not exp.done[i] and source is not None:
                pending[i] = source.emigrants
        return pending

    def _individuals(self) -> int:
        exp = self._exp
        return sum(s.individuals for s in exp.summaries if s is not None) if exp else 0

    def _standing(self, seconds: float) -> Standing:
        """The experiment over all islands (the first island wins ties): its candidate is
        the best island candidate, as a single-process run's is its best member."""
        exp = self._exp
        assert exp is not None
        summaries = [s for s in exp.summaries if s is not None]
        size = sum(s.size for s in summaries)
        mean = sum(s.mean * s.size for s in summaries) / size if size else 0.0
        square = sum((s.std ** 2 + s.mean ** 2) * s.size for s in summaries) / size if size else 0
        best_ever = max(summaries, key=lambda s: s.best_ever)
        offers = [s for s in summaries if s.candidate is not None]
        offer = max(offers, key=lambda s: s.candidate[1] if s.candidate else 0.0
                    ) if offers else None
        candidate = offer.candidate if offer is not None else None

        def program(text: str | None) -> Program | None:
            return parse(text, "<island>") if text is not None else None

        return Standing(
            experiment=exp.index, individuals=sum(s.individuals for s in summaries),
            train_steps=sum(s.train_steps for s in summaries), seconds=seconds,
            spent=all(exp.done), size=size, mean=mean,
            std=math.sqrt(max(square - mean * mean, 0.0)), best=max(s.best for s in summaries),
            best_ever=best_ever.best_ever, best_ever_program=program(best_ever.best_ever_program),
            candidate=(parse(candidate[0], "<island>"), candidate[1]) if candidate else None,
            candidate_ancestry=Ancestry.from_json(candidate[2], "<island>")
            if candidate else None,
            candidate_first=program(offer.candidate_first) if offer is not None else None,
            fec_hits=sum(s.fec_hits for s in summaries),
            fec_misses=sum(s.fec_misses for s in summaries),
            memo_hits=sum(s.memo_hits for s in summaries),
            hurdle_stopped=sum(s.hurdle_stopped for s in summaries))

    def _progress(self, seconds: float) -> None:
        exp = self._exp
        assert exp is not None
        standing = self._standing(seconds)
        self.progress_records += 1
        self.hooks.progress({**standing.record(self.driver.total_individuals, standing.spent),
                             "islands": self.settings.islands, "barrier": exp.barrier})
        best = standing.best_ever_program
        if self.driver.chosen is None and best is not None and best != self._best:
            self._best = best
            self.hooks.best(best, standing.best_ever)

    def _finish(self) -> None:
        """Score the best island candidate on T_select, as Search does with its best."""
        exp = self._exp
        assert exp is not None
        standing = self._standing(exp.seconds)
        self._exp = None
        self._best = None
        self.driver.progress_records = self.progress_records
        # Records the experiment, picks the chosen program, runs T_final when done, and
        # checkpoints through _DriverHooks.
        self.driver.finish(standing)

    # ---- checkpoints ------------------------------------------------------------------------

    def _checkpoint(self) -> None:
        """Snapshot every island at this barrier; the log restarts from here."""
        exp = self._exp
        assert exp is not None
        states: dict[int, dict[str, Any]] = {}
        for reply in self._call({w: States() for w in range(len(self._islands))}).values():
            states.update(reply)
        exp.checkpoint = {
            "index": exp.index,
            "barrier": exp.barrier,
            "states": [states[i] for i in range(self.settings.islands)],
            "done": list(exp.done),
            "summaries": [s.to_json() if s is not None else None for s in exp.summaries],
            "pending": [[list(m) for m in p] for p in exp.pending],
            "seconds": exp.seconds,
            "progress_records": self.progress_records,
        }
        exp.log = []
        self.hooks.checkpoint(self.state())

    def state(self) -> dict[str, Any]:
        """The run at its last checkpoint (or between experiments), JSON-ready: the driver's
        Search state (what `open_search` reads: the experiments so far) plus the islands."""
        exp = self._exp
        snapshot = exp.checkpoint if exp is not None else None
        state = self.driver.state()
        state["progress_records"] = snapshot["progress_records"] if snapshot else (
            self.progress_records)
        state["islands"] = {"format": STATE_FORMAT, "version": STATE_VERSION,
                            "settings": self.settings.to_json(), "experiment": snapshot}
        return state

    def restore(self, state: Any) -> None:
        """Continue from `state()` of a run with the same config, seed and island settings.
        Every field is checked first, the islands' states too (StateError naming the field);
        a wrong one changes nothing."""
        islands = st.Fields(state, "").table("islands")
        if islands.data.get("format") != STATE_FORMAT or islands.data.get(
                "version") != STATE_VERSION:
            raise st.StateError("islands: not the state of an island run of a known version")
        settings = IslandSettings.from_json(islands.get("settings"), islands.key("settings"))
        if settings != self.settings:
            raise st.StateError(f"{islands.key('settings')}: the state is of {settings}, not "
                                f"{self.settings}")
        saved = self.driver.read_state(state)
        snapshot = islands.optional_table("experiment")
        exp = self._read_snapshot(snapshot, len(saved.experiments)) if snapshot else None
        self.driver.restore_saved(saved)
        self.progress_records = self.driver.progress_records
        self._exp = exp

    def _read_snapshot(self, f: st.Fields, finished: int) -> _Experiment:
        """The experiment under way at the last checkpoint (`_checkpoint` writes it)."""
        n = self.settings.islands
        index = f.integer("index", finished, finished)
        # The workers restore these states later, when the run folder is in use again: they
        # are read here first, by an island like theirs.
        checker = island_search(self.spec)
        for i, island in enumerate(f.items("states", length=n)):
            where = f"{f.key('states')}[{i}]"
            current = checker.read_state(island, where).current
            if current is not None and current.index != index:
                raise st.StateError(f"{where}.current.index: must be {index}, the experiment's")

        def program(value: Any, key: str) -> Program:
            return self.driver.checked_program(st.text(value, key), key)

        summaries: list[Summary | None] = [
            Summary.from_json(s, f"{f.key('summaries')}[{i}]", program)
            for i, s in enumerate(f.items("summaries", length=n))]
        done = [st.boolean(d, f"{f.key('done')}[{i}]") for i, d in enumerate(
            f.items("done", length=n))]
        for i, (d, s) in enumerate(zip(done, summaries, strict=True)):
            if s is not None and d != s.done:
                raise st.StateError(f"{f.key('done')}[{i}]: must be {s.done}, as its summary")
        pending = [tuple(migrant(m, f"{f.key('pending')}[{i}][{j}]", program)
                         for j, m in enumerate(st.items(p, f"{f.key('pending')}[{i}]")))
                   for i, p in enumerate(f.items("pending", length=n))]
        f.integer("progress_records")
        return _Experiment(index=index, barrier=f.integer("barrier"), done=done,
                           summaries=summaries, pending=pending,
                           seconds=f.number("seconds", 0.0), checkpoint=dict(f.data))


def evolve_islands(config: Config, seed: int = 0, *, islands: int, migrate_every: int = 10_000,
                   migrants: int = 1, workers: int | None = None, ray: str | None = None,
                   backend: str = "vm", hooks: Hooks | None = None) -> Result:
    """`azdsl.search.evolve` over islands: the same Result for any `workers` and `ray`."""
    settings = IslandSettings(islands, migrate_every, migrants)
    run = IslandRun(config, seed, settings, backend=backend, hooks=hooks,
                    execution=Execution(workers, ray))
    return run.run()

