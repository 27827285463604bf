"""Functional equivalence checking (docs/search.md) and the structural cache.

FEC: before a full evaluation, a child runs on the first few training and validation examples
of each task with a fixed random stream; the exact errors, the task index and the number of
training examples of the real run hash to 64 bits, and an LRU cache maps that hash to the
task's fitness. A hit reuses the fitness; an entry is dropped once it has served
forget_every - 1 hits (`max_hits`, as the original), so it is recomputed the next time. The
cache state changes results (only through that documented reuse), so it is saved in
checkpoints (`state` / `from_state`).

The structural cache is a memo, not a source of reuse: it remembers, per simplified program,
the probe hashes and train steps (always deterministic: the probe stream is fixed) and the
full per-task fitness and train steps (only for programs without live random ops). The search
replays the FEC bookkeeping from it exactly as if the probe and the evaluation had run, so it
never changes a result, and it need not be saved.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterable, Sequence
from typing import Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt
from numba import njit

from azdsl import rng
from azdsl.kernels import mix64

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
UIntArray = npt.NDArray[np.uint64]

# The fixed evaluation seed of every probe run ("a fixed random stream", reference: 235732282).
PROBE_SEED = 235732282
_HASH_SEED = 42
_NAN_BITS = 0x7FF8000000000000


def _bits(value: float) -> int:
    """float64 bits with -0.0 read as 0.0 and every NaN as one NaN (as std::hash does)."""
    if value != value:
        return _NAN_BITS
    return int(np.float64(value + 0.0).view(np.uint64))


def probe_hash(train_errors: Sequence[float], valid_errors: Sequence[float], task_index: int,
               num_train: int) -> int:
    """The FEC key of one task (pure Python; `probe_hashes` is its batched Numba twin)."""
    h = rng.mix64(_HASH_SEED)
    for value in (*train_errors, *valid_errors):
        h = rng.mix64(h ^ _bits(value))
    for value in (len(train_errors), len(valid_errors), task_index, num_train):
        h = rng.mix64(h ^ (value & rng.MASK))
    return h


@njit(cache=True)
def _probe_hashes(errors: FloatArray, train_recorded: IntArray, valid_recorded: IntArray,
                  task_index: IntArray, num_train: IntArray, out: UIntArray) -> None:
    nan_bits = np.uint64(_NAN_BITS)
    one = np.zeros(1)
    view = one.view(np.uint64)
    for t in range(errors.shape[0]):
        h = mix64(np.uint64(_HASH_SEED))
        for k in range(train_recorded[t] + valid_recorded[t]):
            value = errors[t, k]
            if value != value:
                bits = nan_bits
            else:
                one[0] = value + 0.0
                bits = view[0]
            h = mix64(h ^ bits)
        h = mix64(h ^ np.uint64(train_recorded[t]))
        h = mix64(h ^ np.uint64(valid_recorded[t]))
        h = mix64(h ^ np.uint64(task_index[t]))
        h = mix64(h ^ np.uint64(num_train[t]))
        out[t] = h


def probe_hashes(errors: FloatArray, train_recorded: IntArray, valid_recorded: IntArray,
                 task_index: IntArray, num_train: IntArray) -> list[int]:
    """FEC keys of every task from a probe's error rows (errors[t, :recorded] per task)."""
    out = np.zeros(errors.shape[0], dtype=np.uint64)
    _probe_hashes(errors, train_recorded, valid_recorded, task_index, num_train, out)
    return [int(k) for k in out.tolist()]


def max_hits(forget_every: int) -> int:
    """The hits an entry serves before it is forgotten (0: no limit). As the original's
    FECCache::Find: an entry's count starts at 1 when it is stored and grows by one per hit,
    and the hit that brings it to forget_every is the entry's last, so it serves
    forget_every - 1 hits (configs refuse 1, as the original does; here it would serve 1)."""
    return max(forget_every - 1, 1) if forget_every else 0


class FecCache:
    """The LRU of per-task fitness keyed by probe hashes, with hit counters."""

    __slots__ = ("_entries", "cache_size", "forget_every", "hits", "max_hits", "misses")

    def __init__(self, cache_size: int = 100_000, forget_every: int = 100) -> None:
        self.cache_size = cache_size
        self.forget_every = forget_every
        self.max_hits = max_hits(forget_every)
        # key -> [fitness, hits served]; oldest first, most recently used last
        self._entries: OrderedDict[int, list[float]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, key: int) -> float | None:
        """The cached fitness on a hit (counted, refreshed, forgotten after max_hits hits),
        None on a miss (counted; the caller evaluates and calls `insert`)."""
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        entry[1] += 1
        if self.max_hits and entry[1] >= self.max_hits:
            del self._entries[key]
        else:
            self._entries.move_to_end(key)
        return entry[0]

    def lookup_into(self, keys: Sequence[int], tasks: Iterable[int],
                    per_task: list[float]) -> list[int]:
        """`lookup` of keys[t] for each t of `tasks` in order: hits go to per_task[t]; returns
        the tasks that missed (the search's hot path: one call per child)."""
        entries = self._entries
        limit = self.max_hits
        missing = []
        hits = 0
        for t in tasks:
            key = keys[t]
            entry = entries.get(key)
            if entry is None:
                missing.append(t)
                continue
            hits += 1
            served = entry[1] + 1
            entry[1] = served
            if limit and served >= limit:
                del entries[key]
            else:
                entries.move_to_end(key)
            per_task[t] = entry[0]
        self.hits += hits
        self.misses += len(missing)
        return missing

    def insert(self, key: int, fitness: float) -> None:
        self._entries[key] = [fitness, 0]
        self._entries.move_to_end(key)
        while len(self._entries) > self.cache_size:
            self._entries.popitem(last=False)

    def assign(self, other: FecCache) -> None:
        """Take over another cache's entries and counters (the compiled search loop's)."""
        self._entries = other._entries
        self.hits, self.misses = other.hits, other.misses

    def state(self) -> dict[str, Any]:
        """Everything that affects later lookups, as JSON-ready lists (oldest first)."""
        entries = self._entries
        return {
            "cache_size": self.cache_size,
            "forget_every": self.forget_every,
            "hits": self.hits,
            "misses": self.misses,
            "keys": list(entries),
            "fitness": [e[0] for e in entries.values()],
            "served": [int(e[1]) for e in entries.values()],
        }

    @staticmethod
    def from_state(state: dict[str, Any]) -> FecCache:
        cache = FecCache(int(state["cache_size"]), int(state["forget_every"]))
        cache.hits = int(state["hits"])
        cache.misses = int(state["misses"])
        keys, fitness, served = state["keys"], state["fitness"], state["served"]
        if not len(keys) == len(fitness) == len(served):
            raise ValueError("FEC state lists differ in length")
        for key, fit, count in zip(keys, fitness, served, strict=True):
            cache._entries[int(key)] = [float(fit), int(count)]
        return cache


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LruMemo(Generic[K, V]):
    """A bounded least-recently-used memo (the structural cache)."""

    __slots__ = ("_entries", "hits", "misses", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[K, V] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> V | None:
        if self.size <= 0:  # off: nothing is stored, so nothing is looked up or counted
            return None
        value = self._entries.get(key)
        if value is None:
            self.misses += 1
            return None
        self.hits += 1
        self._entries.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        if self.size <= 0:
            return
        self._entries[key] = value
        self._entries.move_to_end(key)
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)
