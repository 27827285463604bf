"""The search's evaluator: prune, memoise, check functional equivalence, run the backend.

A child is pruned (dead code out, azdsl.prune), so children with the same live code share one
entry in the structural memo (fec.LruMemo), and only live code is lowered and run. With FEC
on, every child is probed on every task (or its probe hashes come from the memo), each task's
hash is looked up in the FEC cache, and the tasks that miss are evaluated in full (or their
fitness comes from the memo, for programs without random ops) and inserted. Train steps are
counted as if every probe and evaluation ran, so budgets and results do not depend on the
memo.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from azdsl.evaluate import Settings, combine_fitness, get_backend
from azdsl.fec import PROBE_SEED, FecCache, LruMemo, probe_hash, probe_hashes
from azdsl.hurdles import Hurdle
from azdsl.program import Program
from azdsl.prune import Pruner
from azdsl.tasks import Task


class Engine(Protocol):
    """What the scorer needs from a backend, for one fixed list of tasks."""

    def prepare(self, program: Program) -> Any:
        """A handle on the live code of a child for the calls below (its lowered form)."""

    def probe(self, handle: Any, num_train: Sequence[int]) -> tuple[list[int], int]:
        """FEC hashes of every task (num_train: the real run's training examples per task)
        and the train steps the probe took."""

    def full(self, handle: Any, tasks: Sequence[int], seed: int) -> tuple[list[float], list[int]]:
        """Fitness and train steps of each listed task."""


@dataclass(frozen=True)
class ProbeSize:
    num_train: int = 10
    num_valid: int = 10


class BackendEngine:
    """An Engine over any registered evaluate backend (interp, jit, vm)."""

    def __init__(self, backend: str, tasks: Sequence[Task], probe: ProbeSize,
                 max_abs_error: float = 100.0) -> None:
        self.backend = get_backend(backend)
        self.tasks = list(tasks)
        self.probe_settings = Settings(seed=PROBE_SEED, max_abs_error=max_abs_error,
                                       num_train=probe.num_train, num_valid=probe.num_valid,
                                       epochs=1, record=probe.num_train + probe.num_valid)
        self.max_abs_error = max_abs_error

    def prepare(self, program: Program) -> Any:
        return program

    def probe(self, handle: Any, num_train: Sequence[int]) -> tuple[list[int], int]:
        outcomes = self.backend.evaluate_tasks(handle, self.tasks, self.probe_settings)
        keys = []
        for task, real, out in zip(self.tasks, num_train, outcomes, strict=True):
            errors = out.errors.tolist()
            keys.append(probe_hash(errors[: out.train_recorded], errors[out.train_recorded:],
                                   task.index, real))
        return keys, sum(o.train_steps for o in outcomes)

    def full(self, handle: Any, tasks: Sequence[int], seed: int) -> tuple[list[float], list[int]]:
        settings = Settings(seed=seed, max_abs_error=self.max_abs_error)
        outcomes = self.backend.evaluate_tasks(handle, [self.tasks[t] for t in tasks], settings)
        return [o.fitness for o in outcomes], [o.train_steps for o in outcomes]


class VmEngine:
    """An Engine on the Numba VM: one dispatch per probe or evaluation, arrays reused."""

    def __init__(self, tasks: Sequence[Task], probe: ProbeSize, sizes: tuple[int, int, int],
                 max_abs_error: float = 100.0) -> None:
        from azdsl import vm

        dims = {t.dim for t in tasks}
        if len(dims) != 1:
            raise ValueError("the search tasks must share one feature size F")
        self.dim = dims.pop()
        self._vm = vm
        self._batch = vm.vm_module(self.dim).evaluate_batch
        self.sizes = sizes
        self.max_abs_error = float(max_abs_error)
        self.full_tasks = vm.PackedTasks.pack(tasks, Settings())
        self.probe_tasks = vm.PackedTasks.pack(
            tasks, Settings(num_train=probe.num_train, num_valid=probe.num_valid, epochs=1))
        n = len(tasks)
        self.fitness = np.zeros((1, n))
        self.probe_errors = np.zeros((1, n, probe.num_train + probe.num_valid))
        self.no_errors = np.zeros((1, n, 0))
        self.counts = np.zeros((1, n, 3), dtype=np.int64)
        self.probe_seed = np.array([PROBE_SEED], dtype=np.uint64)
        self.seed = np.zeros(1, dtype=np.uint64)
        self._subsets: dict[tuple[int, ...], Any] = {}
        # Compile (or load from Numba's cache) before the search's clock starts.
        empty = self.prepare(Program())
        self.probe(empty, [0] * n)
        self.full(empty, [], 0)

    def prepare(self, program: Program) -> Any:
        low = self._vm.lower(program, self.sizes, self.dim, all_live=True)
        return (low.ints, low.floats, np.array([low.bounds], dtype=np.int64),
                np.array([[low.mem_size, low.features]], dtype=np.int64))

    def _run(self, handle: Any, tasks: Any, seeds: Any, errors: Any) -> None:
        ints, floats, bounds, layout = handle
        self._batch(ints, floats, bounds, layout, seeds, tasks.x_train, tasks.y_train,
                    tasks.x_valid, tasks.y_valid, tasks.perm, tasks.n_train, tasks.n_valid,
                    tasks.epochs, tasks.classification, tasks.task_index, self.max_abs_error,
                    self.fitness, errors, self.counts)

    def probe(self, handle: Any, num_train: Sequence[int]) -> tuple[list[int], int]:
        self._run(handle, self.probe_tasks, self.probe_seed, self.probe_errors)
        counts = self.counts[0]
        keys = probe_hashes(self.probe_errors[0], counts[:, 0], counts[:, 1],
                            self.probe_tasks.task_index, np.asarray(num_train, dtype=np.int64))
        return keys, int(counts[:, 2].sum())

    def full(self, handle: Any, tasks: Sequence[int], seed: int) -> tuple[list[float], list[int]]:
        self.seed[0] = seed
        packed = self.full_tasks
        if len(tasks) != len(packed):  # a subset (hurdles, FEC hits): the others train 0 epochs
            key = tuple(tasks)
            packed = self._subsets.get(key)  # type: ignore[assignment]
            if packed is None:
                keep = np.zeros(len(self.full_tasks), dtype=np.int64)
                keep[list(tasks)] = 1
                packed = self._subsets[key] = dataclasses.replace(
                    self.full_tasks, epochs=self.full_tasks.epochs * keep)
        self._run(handle, packed, self.seed, self.no_errors)
        fitness = self.fitness[0].tolist()
        steps = self.counts[0, :, 2].tolist()
        if len(tasks) == len(fitness):
            return fitness, steps
        return [fitness[t] for t in tasks], [steps[t] for t in tasks]


class _Memo:
    """What one simplified program is known to give (see the module docstring)."""

    __slots__ = ("fitness", "handle", "probe_keys", "probe_steps", "steps")

    def __init__(self, num_tasks: int) -> None:
        self.handle: Any = None
        self.probe_keys: list[int] | None = None
        self.probe_steps = 0
        self.fitness: list[float | None] = [None] * num_tasks
        self.steps: list[int] = [0] * num_tasks


class TrainBudget:
    """Reference §3.7: a program trains on 0 examples when its cost exceeds factor x baseline."""

    def __init__(self, baseline: Program, factor: float, num_train: Sequence[int]) -> None:
        self.factor = factor
        self.num_train = list(num_train)
        self.limits = [factor * self.cost(baseline, n) for n in self.num_train]

    @staticmethod
    def cost(program: Program, num_train: int) -> int:
        setup, predict, learn = (sum(i.op.cost for i in c) for c in program.components)
        return setup + num_train * (predict + learn)

    def rejects(self, program: Program) -> bool:
        """True when the program is too costly for any task (all tasks share the rule)."""
        setup, predict, learn = (sum(i.op.cost for i in c) for c in program.components)
        return any(setup + n * (predict + learn) > limit  # cost(), summed once per program
                   for n, limit in zip(self.num_train, self.limits, strict=True))


class Scorer:
    """Scores children on the search tasks; counts train steps, FEC and memo hits."""

    def __init__(self, engine: Engine, num_train: Sequence[int], *, fec: FecCache | None,
                 memo_size: int, combine: str = "mean",
                 train_budget: TrainBudget | None = None, hurdle: Hurdle | None = None) -> None:
        self.engine = engine
        self.pruner = Pruner()
        self.num_train = list(num_train)
        self.num_tasks = len(self.num_train)
        self.fec = fec
        self.memo: LruMemo[Hashable, _Memo] = LruMemo(memo_size)
        self.combine = combine
        self.train_budget = train_budget
        self.hurdle = hurdle
        self.train_steps = 0
        self.evaluations = 0  # individuals whose fitness needed a full evaluation of a task

    def score(self, program: Program, seed: int) -> float:
        """The fitness of `program` on the search tasks; `seed` keys its random ops."""
        pruned = self.pruner.prune(program)
        has_random = pruned.random
        rejected = self.train_budget is not None and self.train_budget.rejects(program)
        memo_key = (pruned.key, True) if rejected else pruned.key
        memo = self.memo.get(memo_key)
        if memo is None:
            memo = _Memo(self.num_tasks)
            self.memo.put(memo_key, memo)
        handle = memo.handle
        if handle is None:
            handle = memo.handle = self.engine.prepare(pruned.program())
        per_task = [0.0] * self.num_tasks
        if self.fec is not None:
            if memo.probe_keys is None:
                real = [0] * self.num_tasks if rejected else self.num_train
                memo.probe_keys, memo.probe_steps = self.engine.probe(handle, real)
            self.train_steps += memo.probe_steps
        hurdle = self.hurdle
        if hurdle is None:
            self._resolve(memo, handle, range(self.num_tasks), seed, has_random, rejected,
                          per_task)
            return combine_fitness(per_task, self.combine)
        # Hurdles (azdsl.hurdles): the first tasks, then the rest only if the child passes.
        first = hurdle.tasks
        self._resolve(memo, handle, range(first), seed, has_random, rejected, per_task)
        partial = combine_fitness(per_task[:first], self.combine)
        if not hurdle.passes(partial):
            return combine_fitness(per_task, self.combine)  # the rest count as 0
        self._resolve(memo, handle, range(first, self.num_tasks), seed, has_random, rejected,
                      per_task)
        return combine_fitness(per_task, self.combine)

    def _resolve(self, memo: _Memo, handle: Any, tasks: range, seed: int, has_random: bool,
                 rejected: bool, per_task: list[float]) -> None:
        """Fill per_task for `tasks`: from the FEC cache where it hits, else evaluated."""
        fec = self.fec
        if fec is None:
            self._full(memo, handle, list(tasks), seed, has_random, rejected, per_task)
            return
        assert memo.probe_keys is not None
        missing = fec.lookup_into(memo.probe_keys, tasks, per_task)
        if missing:
            self._full(memo, handle, missing, seed, has_random, rejected, per_task)
            for t in missing:
                fec.insert(memo.probe_keys[t], per_task[t])

    def _full(self, memo: _Memo, handle: Any, tasks: list[int], seed: int, has_random: bool,
              rejected: bool, per_task: list[float]) -> None:
        if rejected:  # trains on 0 examples: fitness 0, nothing runs
            return
        known = memo.fitness
        if not has_random and all(known[t] is not None for t in tasks):
            for t in tasks:
                per_task[t] = known[t]  # type: ignore[assignment]
                self.train_steps += memo.steps[t]
            return
        self.evaluations += 1
        fitness, steps = self.engine.full(handle, tasks, seed)
        for t, value, count in zip(tasks, fitness, steps, strict=True):
            per_task[t] = value
            self.train_steps += count
            if not has_random:
                known[t] = value
                memo.steps[t] = count
