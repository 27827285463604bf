"""One experiment's search as arrays, and the compiled loop (azdsl.search.loop) run on them.

An `Engine` holds everything an experiment's search changes: the population (programs as
rows, language.rows; fitness; each member's lineage row), the best child so far, the FEC cache,
the structural memo, the hurdle's window, the lineage table, and the counters. `run` lets the
loop evaluate children in one compiled call; the Python around it (azdsl.search.evolve) reads the
population (`members`, `best`), puts migrants in (`inject`), and saves and restores the state
as JSON (`state`, `restore`: every field checked first, for the VM trusts the cells it gets).

The random streams are counter-based (azdsl.running.rng): child k of an experiment draws its
tournament from stream(tournament key, k), its mutation or random program from
stream(mutation key, k), an initial program from stream(init key, k) and its evaluation from
seed evaluation + k. So the state holds no generator, and a run is the same in any segments,
after any number of resumes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from azdsl import state as st
from azdsl.language.ops import on_table_change
from azdsl.language.printer import unparse
from azdsl.language.program import Program
from azdsl.language.rows import decode, encode
from azdsl.limits import MAX_INT
from azdsl.running import vm
from azdsl.running.codegen import content_stem, dependency_stamp, load_module
from azdsl.running.evaluate import Settings
from azdsl.running.fitness import check_tasks
from azdsl.running.tasks import Task
from azdsl.search import kernel as kern
from azdsl.search import loop as searchloop
from azdsl.search.fec import PROBE_SEED, max_hits
from azdsl.search.lineage import ID_SHIFT, Ancestry, Step
from azdsl.search.mutate import (
    RECORD_TYPES,
    MutationConfig,
    op_tables,
    random_program_from_key,
    space_arrays,
)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
UIntArray = npt.NDArray[np.uint64]

_UINT64 = 2**64


def loop_module(dim: int, fitness: str | None = None) -> ModuleType:
    """azdsl.search.loop bound to the VM for F = `dim` (and the registered fitness named):
    a copy per F, VM and version of the kernels it inlines, so that Numba compiles and caches
    it against exactly those."""
    return _loop_module(dim, vm.vm_module(dim, fitness=fitness))


@cache
def _loop_module(dim: int, vm_mod: ModuleType) -> ModuleType:
    source = Path(searchloop.__file__).read_text(encoding="utf-8")
    inlined = dependency_stamp("azdsl.search.kernel", "azdsl.language.liveness",
                               "azdsl.language.rows", "azdsl.search.fec", "azdsl.limits")
    module = load_module(content_stem(f"azdsl_search_F{dim}",
                                      f"{source}{vm_mod.__name__}{inlined}"), source)
    module.evaluate_batch = vm_mod.evaluate_batch  # type: ignore[attr-defined]
    return module


on_table_change(_loop_module.cache_clear)  # user ops: another VM, so another loop module


@dataclass(frozen=True)
class Keys:
    """The random streams of one experiment's search (running.rng keys) and its lineage tag."""

    init: int  # the initial programs
    tournament: int
    mutation: int  # mutations, and random search's programs
    evaluation: int  # child k is evaluated with seed evaluation + k
    tag: int = 0  # lineage ids are tag << ID_SHIFT + the individual's number


@dataclass(frozen=True)
class LoopSettings:
    """What the loop needs of a config, besides the search space."""

    population_size: int
    tournament_size: int
    random_search: bool
    combine: str
    max_abs_error: float
    fec: bool
    fec_cache_size: int
    forget_every: int
    probe: tuple[int, int]  # FEC's probe: training and validation examples
    memo_size: int
    hurdle: tuple[int, float, int] | None  # tasks, percentile, warmup
    budget_limits: tuple[float, ...] | None  # the train budget's cost limit per task
    fitness: str | None = None  # a registered fitness's name (None: built in, by task kind)


def budget_limits(baseline: Program, factor: float, num_train: list[int]) -> tuple[float, ...]:
    """The train budget (reference §3.7): a program whose cost, Setup + examples x (Predict +
    Learn) in op cost units, exceeds `factor` x the baseline's on a task trains on no example."""
    setup, predict, learn = (sum(i.op.cost for i in c) for c in baseline.components)
    return tuple(factor * (setup + n * (predict + learn)) for n in num_train)


class Engine:
    """One experiment's search state as arrays; see the module docstring."""

    def __init__(self, space: MutationConfig, sizes: tuple[int, int, int], longest: int,
                 tasks: list[Task], settings: LoopSettings, keys: Keys,
                 initial: Program | None) -> None:
        self.space = space
        self.settings = settings
        self.keys = keys
        self.dim = tasks[0].dim
        check_tasks(settings.fitness, tasks)  # an npz file's kind is known only now
        self.module = loop_module(self.dim, settings.fitness)
        self.t = op_tables()
        self.g = space_arrays(space)
        self.capacity = longest + 1  # rows per program: the longest it can be, and one spare
        rows = self.capacity
        ns, nv, nm = sizes
        dim = self.dim
        cells = ns + nv + nm
        self.mem_tables = (np.array([0, ns, ns + nv], dtype=np.int64),
                           np.array([0, ns, ns + nv * dim], dtype=np.int64),
                           np.array([1, dim, dim * dim], dtype=np.int64), vm.ROW, vm.FLOAT_ROW)
        mem_size = ns + nv * dim + nm * dim * dim
        self.lw = (np.zeros(rows, dtype=np.bool_), np.zeros((4, cells), dtype=np.bool_),
                   np.zeros(cells, dtype=np.int64), np.zeros(rows * vm.ROW, dtype=np.int64),
                   np.zeros(rows * vm.FLOAT_ROW), np.zeros(4, dtype=np.int64),
                   np.zeros(2, dtype=np.uint64), np.zeros((1, 4), dtype=np.int64),
                   np.zeros((1, 2), dtype=np.int64), mem_size, ns)
        n = len(tasks)
        slots = 1  # structural_cache_size = 0: the memo is off, score() uses one scratch slot
        if settings.memo_size > 0:
            slots = 1 << max(4, math.ceil(math.log2(
                max(16, min(settings.memo_size, 2**24 // max(1, n))) / 0.7)))
        self.memo = (settings.memo_size > 0,
                     np.zeros((slots, 2), dtype=np.uint64), np.zeros(slots, dtype=np.bool_),
                     np.zeros((slots, n), dtype=np.uint64), np.zeros(slots, dtype=np.bool_),
                     np.zeros(slots, dtype=np.int64), np.full((slots, n), np.nan),
                     np.zeros((slots, n), dtype=np.int64), np.zeros(1, dtype=np.int64))
        self.fec = _fec_arrays(settings.fec_cache_size if settings.fec else 1,
                               max_hits(settings.forget_every) if settings.fec else 0,
                               settings.fec)
        self.hurdle = _hurdle_arrays(settings.hurdle, settings.population_size)
        full = vm.PackedTasks.pack(tasks, Settings())
        probe = settings.probe
        probe_tasks = vm.PackedTasks.pack(
            tasks, Settings(num_train=probe[0], num_valid=probe[1], epochs=1))
        num_train = np.array([len(task.y_train) for task in tasks], dtype=np.int64)
        limits = np.array(settings.budget_limits or [0.0] * n, dtype=np.float64)
        self.tasks = (
            probe_tasks.x_train, probe_tasks.y_train, probe_tasks.x_valid, probe_tasks.y_valid,
            probe_tasks.perm, probe_tasks.n_train, probe_tasks.n_valid, probe_tasks.epochs,
            full.classification, full.task_index, full.x_train, full.y_train, full.x_valid,
            full.y_valid, full.perm, full.n_train, full.n_valid, full.epochs,
            np.zeros(n, dtype=np.int64), np.zeros((1, n)),
            np.zeros((1, n, probe[0] + probe[1])), np.zeros((1, n, 0)),
            np.zeros((1, n, 3), dtype=np.int64), np.zeros(1, dtype=np.uint64),
            np.array([PROBE_SEED], dtype=np.uint64), num_train, np.zeros(n, dtype=np.int64),
            float(settings.max_abs_error), settings.combine == "median",
            settings.budget_limits is not None, limits, np.zeros(n), np.zeros(n, dtype=np.int64),
            np.zeros(n))
        size = settings.population_size
        self.initial = initial
        i_rows, i_lits, i_n = (np.zeros((rows, 4), dtype=np.int64), np.zeros((rows, 3)),
                               np.zeros(3, dtype=np.int64))
        if initial is not None:
            encode(initial, i_rows, i_lits, i_n)
        self.init = (searchloop.INIT_RANDOM if initial is None else searchloop.INIT_PROGRAM,
                     i_rows, i_lits, i_n)
        self.pop = (np.zeros((size, rows, 4), dtype=np.int64), np.zeros((size, rows, 3)),
                    np.zeros((size, 3), dtype=np.int64), np.zeros(size),
                    np.full(size, -1, dtype=np.int64), np.zeros(2, dtype=np.int64))
        self.child = (np.zeros((rows, 4), dtype=np.int64), np.zeros((rows, 3)),
                      np.zeros(3, dtype=np.int64), np.zeros(2, dtype=np.uint64),
                      np.zeros(3, dtype=np.int64))
        self.best_arrays = (np.zeros((rows, 4), dtype=np.int64), np.zeros((rows, 3)),
                            np.zeros(3, dtype=np.int64), np.full(1, -1.0),
                            np.full(1, -1, dtype=np.int64))
        self.lineage = _lineage_arrays(4 * size + 4096, 256)
        self.counters = np.zeros(6, dtype=np.int64)
        self.individuals = 0
        self.train_steps = 0
        self._decoded: dict[bytes, Program] = {}

    # ---- running ---------------------------------------------------------------------------

    def run(self, limit: int, max_steps: int, max_individuals: int) -> tuple[int, int, bool]:
        """Evaluate up to `limit` children (fewer when a budget of train steps or individuals,
        0 for none, is reached); returns (children, their train steps, a budget stopped it)."""
        c = self.counters
        before, steps_before = self.individuals, self.train_steps
        c[searchloop.C_INDIVIDUALS] = before
        c[searchloop.C_STEPS] = steps_before
        keys = self.keys
        budget = (max_steps, max_individuals, np.uint64(keys.evaluation % _UINT64))
        stream_keys = (np.uint64(keys.init % _UINT64), np.uint64(keys.tournament % _UINT64),
                       np.uint64(keys.mutation % _UINT64), np.int64(keys.tag << ID_SHIFT))
        while True:
            left = limit - (int(c[searchloop.C_INDIVIDUALS]) - before)
            if left <= 0:
                break
            self.module.run_chunk(
                left, c, budget, self.settings.random_search, stream_keys, self.init, self.pop,
                self.child, self.best_arrays, self.lineage, self.settings.tournament_size,
                self.g, self.t, self.mem_tables, self.lw, self.memo, self.fec, self.tasks,
                self.hurdle)
            if c[searchloop.C_STOP] != searchloop.STOP_ROOM:
                break
            self._make_room()
        self.individuals = int(c[searchloop.C_INDIVIDUALS])
        self.train_steps = int(c[searchloop.C_STEPS])
        stopped = c[searchloop.C_STOP] in (searchloop.STOP_STEPS, searchloop.STOP_INDIVIDUALS)
        return self.individuals - before, self.train_steps - steps_before, bool(stopped)

    def _make_room(self, rows: int = 1) -> None:
        """Room for `rows` more lineage rows and one more best: when the table is full, drop
        the rows no member or best reaches, and grow it if it stays over half full."""
        ints, keys, fitness, count, bests, b_count = self.lineage
        grow_rows = False
        if count[0] + rows > ints.shape[0]:
            self._compact()
            grow_rows = count[0] + rows > ints.shape[0] // 2  # still crowded: grow
        grow_bests = b_count[0] >= bests.shape[0]
        if grow_rows or grow_bests:
            new = _lineage_arrays(2 * ints.shape[0] + rows if grow_rows else ints.shape[0],
                                  2 * bests.shape[0] if grow_bests else bests.shape[0])
            used, b_used = int(count[0]), int(b_count[0])
            new[0][:used] = ints[:used]
            new[1][:used] = keys[:used]
            new[2][:used] = fitness[:used]
            new[3][0] = used
            new[4][:b_used] = bests[:b_used]
            new[5][0] = b_used
            self.lineage = new

    def _compact(self) -> None:
        """Drop the lineage rows no member or best descends from (the rest keep their order,
        so a compacted table is the same however the run was cut into segments)."""
        ints, keys, fitness, count, bests, b_count = self.lineage
        best_node = self.best_arrays[4]
        held = np.concatenate([bests[: b_count[0]], best_node])
        kern.node_compact(ints, keys, fitness, count, self.pop[4], self.filled, held,
                          held.shape[0])
        bests[: b_count[0]] = held[: b_count[0]]
        best_node[0] = held[-1]

    # ---- reading -----------------------------------------------------------------------------

    @property
    def filled(self) -> int:
        """Members so far (the population size once it is full)."""
        return int(self.pop[5][0])

    @property
    def next_slot(self) -> int:
        return int(self.pop[5][1])

    def fitness(self) -> list[float]:
        return [float(x) for x in self.pop[3][: self.filled].tolist()]

    def member(self, slot: int) -> Program:
        rows, lits, n = self.pop[0][slot], self.pop[1][slot], self.pop[2][slot]
        total = int(n.sum())
        raw = rows[:total].tobytes() + lits[:total].tobytes() + n.tobytes()
        program = self._decoded.get(raw)
        if program is None:
            # Members repeat (a child often equals its parent): each distinct one is decoded
            # once, and the programs read are kept while the population may still hold them.
            if len(self._decoded) > 4 * self.settings.population_size:
                self._decoded.clear()
            program = self._decoded[raw] = decode(rows, lits, n)
        return program

    def members(self) -> list[Program]:
        return [self.member(s) for s in range(self.filled)]

    def best(self) -> tuple[Program | None, float]:
        """The fittest child evaluated so far (-1.0 before the first)."""
        rows, lits, n, fit, node = self.best_arrays
        return (decode(rows, lits, n) if node[0] >= 0 else None), float(fit[0])

    def counts(self) -> tuple[int, int, int, int]:
        """FEC hits and misses, structural memo hits, children stopped at the hurdle."""
        ints = self.fec[-1]
        return (int(ints[kern.F_HITS]), int(ints[kern.F_MISSES]),
                int(self.counters[searchloop.C_MEMO_HITS]), int(self.hurdle[-1][kern.H_STOPPED]))

    # ---- lineage -----------------------------------------------------------------------------

    def ancestry_of(self, slot: int) -> Ancestry:
        """The ancestry of member `slot`, from its first ancestor to itself."""
        return self._ancestry(int(self.pop[4][slot]))

    def best_ancestry(self) -> Ancestry | None:
        node = int(self.best_arrays[4][0])
        return self._ancestry(node) if node >= 0 else None

    def _ancestry(self, node: int) -> Ancestry:
        ints, keys, fitness = self.lineage[0], self.lineage[1], self.lineage[2]
        chain = []
        while node >= 0:
            chain.append(node)
            node = int(ints[node, kern.N_PARENT])
        steps = []
        parent_id = -1
        for row in reversed(chain):
            r = ints[row].tolist()
            steps.append(Step(id=r[kern.N_ID], parent=parent_id,
                              mutation=RECORD_TYPES[r[kern.N_TYPE]],
                              component=r[kern.N_COMPONENT], position=r[kern.N_POSITION],
                              individual=r[kern.N_INDIVIDUAL], key=int(keys[row]),
                              fitness=float(fitness[row])))
            parent_id = r[kern.N_ID]
        return Ancestry(tuple(steps))

    def root_program(self, step: Step) -> Program | None:
        """The program of an ancestry's first step, rebuilt: an initial program (the
        config's, or random from its key) or random search's random program."""
        if step.mutation == "initial":
            return self.initial if self.initial is not None else random_program_from_key(
                step.key, self.space)
        if step.mutation == "random":
            return random_program_from_key(step.key, self.space)
        return None

    # ---- migration ---------------------------------------------------------------------------

    def inject(self, program: Program, fitness: float, ancestry: Ancestry | None) -> None:
        """Put a program (of this search space: it fits the rows) in the oldest member's place,
        or in a free slot while the population fills, with its ancestry (or none: a root)."""
        steps = ancestry.steps if ancestry is not None else ()
        self._make_room(max(1, len(steps)))
        ints, keys, fit, count = self.lineage[:4]
        node = -1
        for step in steps or (Step(-1, -1, "injected", -1, -1, -1, 0, fitness),):
            record = np.array([RECORD_TYPES.index(step.mutation), step.component,
                               step.position], dtype=np.int64)
            node = kern.node_add(ints, keys, fit, count, step.id, node, record, step.individual,
                                 np.uint64(step.key % _UINT64), step.fitness)
        rows, lits, n, values, nodes, fill = self.pop
        size = values.shape[0]
        if fill[0] < size:
            slot = int(fill[0])
            fill[0] += 1
        else:
            slot = int(fill[1])
            fill[1] = (slot + 1) % size
        encode(program, rows[slot], lits[slot], n[slot])
        values[slot] = fitness
        nodes[slot] = node

    # ---- state -------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Everything that changes later children, JSON-ready (programs as canonical text,
        each distinct one once)."""
        filled = self.filled
        index: dict[str, int] = {}
        unique: list[str] = []
        slots = []
        printed: dict[int, tuple[Program, str]] = {}  # the program held: its id stays its own
        for slot in range(filled):
            program = self.member(slot)
            known = printed.get(id(program))
            if known is None:
                known = printed[id(program)] = program, unparse(program)
            text = known[1]
            at = index.get(text)
            if at is None:
                at = index[text] = len(unique)
                unique.append(text)
            slots.append(at)
        best = self.best()[0]
        self._compact()
        _, _, _, b_fit, b_node = self.best_arrays
        ints, keys, fitness, count, bests, b_count = self.lineage
        used = int(count[0])
        f_ints = self.fec[-1]
        fec = None
        if self.settings.fec:
            size = int(f_ints[kern.F_SIZE])
            out_keys, out_fit = np.zeros(size, dtype=np.uint64), np.zeros(size)
            out_served = np.zeros(size, dtype=np.int64)
            kern.fec_export(self.fec[1], self.fec[2], self.fec[3], self.fec[5], f_ints,
                            out_keys, out_fit, out_served)
            fec = {"hits": int(f_ints[kern.F_HITS]), "misses": int(f_ints[kern.F_MISSES]),
                   "keys": [int(k) for k in out_keys.tolist()], "fitness": out_fit.tolist(),
                   "served": out_served.tolist()}
        hurdle = None
        if self.settings.hurdle is not None:
            order, h_ints = self.hurdle[4], self.hurdle[6]
            head, held = int(h_ints[kern.H_HEAD]), int(h_ints[kern.H_COUNT])
            hurdle = {"values": [float(order[(head + i) % order.shape[0]]) for i in range(held)],
                      "recorded": int(h_ints[kern.H_RECORDED]),
                      "stopped": int(h_ints[kern.H_STOPPED])}
        return {
            "programs": unique, "slots": slots, "fitness": self.fitness(),
            "next_slot": self.next_slot, "members": self.pop[4][:filled].tolist(),
            "individuals": self.individuals, "train_steps": self.train_steps,
            "memo_hits": int(self.counters[searchloop.C_MEMO_HITS]),
            "best": unparse(best) if best is not None else None,
            "best_fitness": float(b_fit[0]), "best_node": int(b_node[0]),
            "lineage": {"rows": ints[:used].tolist(), "keys": [int(k) for k in
                                                              keys[:used].tolist()],
                        "fitness": fitness[:used].tolist(),
                        "bests": bests[: int(b_count[0])].tolist()},
            "fec": fec, "hurdle": hurdle,
        }

    def restore(self, state: Any, key: str, check: Any) -> None:
        """Take over a state `state` wrote (at `key` of a checkpoint), checked field by field
        first (StateError naming the first wrong one; nothing changes then). `check(text,
        key)` parses a program and holds it to what this search can produce."""
        s = st.Fields(state, key)
        size = self.settings.population_size
        unique: list[Program] = [check(st.text(p, f"{s.key('programs')}[{i}]"),
                                       f"{s.key('programs')}[{i}]")
                                 for i, p in enumerate(s.items("programs", most=size))]
        slots = [st.integer(v, f"{s.key('slots')}[{i}]", 0, len(unique) - 1)
                 for i, v in enumerate(s.items("slots", most=size))]
        filled = len(slots)
        fitness = [st.fitness(v, f"{s.key('fitness')}[{i}]")
                   for i, v in enumerate(s.items("fitness", length=filled))]
        next_slot = s.integer("next_slot", 0, size - 1 if filled == size else 0)
        individuals = s.integer("individuals")
        train_steps = s.integer("train_steps")
        memo_hits = s.integer("memo_hits")
        best_fitness = s.fitness("best_fitness", unset=True)
        best_value = s.get("best")
        best: Program | None = (check(st.text(best_value, s.key("best")), s.key("best"))
                                if best_value is not None else None)
        lin = st.Fields(s.get("lineage"), s.key("lineage"))
        rows = lin.items("rows")
        used = len(rows)
        node_rows = np.zeros((max(used, 1), 6), dtype=np.int64)
        for i, row in enumerate(rows):
            where = f"{lin.key('rows')}[{i}]"
            values = st.items(row, where, length=6)
            node_rows[i, kern.N_ID] = st.integer(values[0], f"{where}[0]", -1)
            node_rows[i, kern.N_PARENT] = st.integer(values[1], f"{where}[1]", -1, i - 1)
            node_rows[i, kern.N_TYPE] = st.integer(values[2], f"{where}[2]", 0,
                                                   len(RECORD_TYPES) - 1)
            node_rows[i, kern.N_COMPONENT] = st.integer(values[3], f"{where}[3]", -1, 2)
            node_rows[i, kern.N_POSITION] = st.integer(values[4], f"{where}[4]", -1)
            node_rows[i, kern.N_INDIVIDUAL] = st.integer(values[5], f"{where}[5]", -1)
        node_keys = [st.integer(v, f"{lin.key('keys')}[{i}]", 0, st.UINT64_MAX)
                     for i, v in enumerate(lin.items("keys", length=used))]
        node_fit = [st.fitness(v, f"{lin.key('fitness')}[{i}]", unset=True)
                    for i, v in enumerate(lin.items("fitness", length=used))]
        bests = [st.integer(v, f"{lin.key('bests')}[{i}]", 0, used - 1)
                 for i, v in enumerate(lin.items("bests"))]
        members = [st.integer(v, f"{s.key('members')}[{i}]", 0, used - 1)
                   for i, v in enumerate(s.items("members", length=filled))]
        best_node = s.integer("best_node", -1 if best is None else 0,
                              -1 if best is None else used - 1)
        fec = self._read_fec(s)
        hurdle = self._read_hurdle(s)
        # Everything checked: take it over.
        self.lineage = _lineage_arrays(max(2 * used, 4 * size + 4096),
                                       max(256, 2 * len(bests)))
        ints, keys, fit, count, b_arr, b_count = self.lineage
        ints[:used] = node_rows[:used]
        keys[:used] = np.array(node_keys, dtype=np.uint64)
        fit[:used] = node_fit
        count[0] = used
        b_arr[: len(bests)] = bests
        b_count[0] = len(bests)
        p_rows, p_lits, p_n, p_fit, p_node, fill = self.pop
        for slot, at in enumerate(slots):
            encode(unique[at], p_rows[slot], p_lits[slot], p_n[slot])
        p_fit[:filled] = fitness
        p_node[:filled] = members
        fill[0], fill[1] = filled, next_slot
        b_rows, b_lits, b_n, b_fit, b_node = self.best_arrays
        if best is not None:
            encode(best, b_rows, b_lits, b_n)
        b_fit[0] = best_fitness
        b_node[0] = best_node
        self.individuals, self.train_steps = individuals, train_steps
        self.counters[searchloop.C_MEMO_HITS] = memo_hits
        if fec is not None:
            self.fec = fec
        if hurdle is not None:
            self.hurdle = hurdle

    def _read_fec(self, s: st.Fields) -> tuple[Any, ...] | None:
        f = s.optional_table("fec")
        st.present_as_configured(f, self.settings.fec, s.key("fec"), "FEC is", "the FEC cache")
        if f is None:
            return None
        size = self.settings.fec_cache_size
        most = max_hits(self.settings.forget_every)
        keys = [st.integer(k, f"{f.key('keys')}[{i}]", 0, st.UINT64_MAX)
                for i, k in enumerate(f.items("keys", most=size))]
        if len(set(keys)) != len(keys):
            raise st.StateError(f"{f.key('keys')}: holds a key twice")
        fitness = [st.fitness(v, f"{f.key('fitness')}[{i}]")
                   for i, v in enumerate(f.items("fitness", length=len(keys)))]
        # An entry is forgotten once it has served max_hits hits.
        served = [st.integer(v, f"{f.key('served')}[{i}]", 0, most - 1 if most else MAX_INT)
                  for i, v in enumerate(f.items("served", length=len(keys)))]
        arrays = _fec_arrays(size, most, True)
        _, a_keys, a_fit, a_served, prev, nxt, bnext, buckets, ints = arrays
        for k, value, count in zip(keys, fitness, served, strict=True):
            kern.fec_insert(np.uint64(k), value, count, a_keys, a_fit, a_served, prev, nxt,
                            bnext, buckets, ints)
        ints[kern.F_HITS] = f.integer("hits")
        ints[kern.F_MISSES] = f.integer("misses")
        return arrays

    def _read_hurdle(self, s: st.Fields) -> tuple[Any, ...] | None:
        h = s.optional_table("hurdle")
        st.present_as_configured(h, self.settings.hurdle is not None, s.key("hurdle"),
                                 "hurdles are", "the hurdle")
        if h is None:
            return None
        window = self.settings.population_size
        recorded = h.integer("recorded")
        # The window holds the partial fitness of the last `window` children recorded.
        values = [st.fitness(v, f"{h.key('values')}[{i}]") for i, v in enumerate(
            h.items("values", length=min(recorded, window)))]
        arrays = _hurdle_arrays(self.settings.hurdle, window, values)
        arrays[6][kern.H_RECORDED] = recorded
        arrays[6][kern.H_STOPPED] = h.integer("stopped", 0, recorded)
        return arrays


# ---- arrays -------------------------------------------------------------------------------------


def _lineage_arrays(rows: int, bests: int) -> tuple[Any, ...]:
    return (np.zeros((rows, 6), dtype=np.int64), np.zeros(rows, dtype=np.uint64),
            np.zeros(rows), np.zeros(1, dtype=np.int64), np.full(bests, -1, dtype=np.int64),
            np.zeros(1, dtype=np.int64))


def _fec_arrays(size: int, forget: int, on: bool = True) -> tuple[Any, ...]:
    """An empty FEC table of `size` entries, each forgotten after `forget` hits (0: never);
    `on`: whether the search uses it."""
    cap = size + 1
    buckets = 1 << max(4, math.ceil(math.log2(2 * cap)))
    ints = np.zeros(8, dtype=np.int64)
    ints[kern.F_HEAD] = ints[kern.F_TAIL] = -1
    ints[kern.F_FREE] = 0
    ints[kern.F_CAP] = size
    ints[kern.F_FORGET] = forget
    return (on, np.zeros(cap, dtype=np.uint64), np.zeros(cap),
            np.zeros(cap, dtype=np.int64), np.full(cap, -1, dtype=np.int64),
            np.append(np.arange(1, cap, dtype=np.int64), -1),
            np.full(cap, -1, dtype=np.int64), np.full(buckets, -1, dtype=np.int64), ints)


def _hurdle_arrays(hurdle: tuple[int, float, int] | None, window: int,
                   values: list[float] | None = None) -> tuple[Any, ...]:
    """What kernel.hurdle_passes holds: (on, tasks, percentile, warmup, the window as a
    ring, the window sorted, ints indexed by H_*)."""
    if hurdle is None:
        return (False, 0, 0.0, 0, np.zeros(1), np.zeros(1), np.zeros(4, dtype=np.int64))
    tasks, percentile, warmup = hurdle
    values = values or []
    order = np.zeros(window)
    order[: len(values)] = values
    ordered = np.zeros(window)
    ordered[: len(values)] = sorted(values)
    ints = np.zeros(4, dtype=np.int64)
    ints[kern.H_COUNT] = len(values)
    return (True, tasks, float(percentile), warmup or window, order, ordered, ints)
