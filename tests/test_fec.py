"""The functional equivalence cache: hashing of probe errors, and the kernel's table
(search.kernel.fec_*) against the oracle LRU (tests/oracle.py): hits, misses, LRU eviction,
forgetting, capacity, saved state."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import FecLru, probe_hash

from azdsl.search import kernel as kern
from azdsl.search.engine import _fec_arrays
from azdsl.search.fec import max_hits, probe_hashes

errors = st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=20)


def key_of(train: list[float], valid: list[float], task: int, num_train: int) -> int:
    """The package's FEC key of one task (probe_hashes of a single row)."""
    row = np.array([[*train, *valid, 0.0]])
    return probe_hashes(row, np.array([len(train)]), np.array([len(valid)]), np.array([task]),
                        np.array([num_train]))[0]


class Table:
    """The kernel's FEC table, built as the engine builds it, behind the oracle's interface."""

    def __init__(self, size: int, most: int) -> None:
        self.arrays = _fec_arrays(size, most)
        _, self.keys, self.fit, self.served, self.prev, self.next, self.bnext, self.buckets, \
            self.ints = self.arrays

    def lookup(self, key: int) -> float | None:
        value = kern.fec_lookup(np.uint64(key), self.keys, self.fit, self.served, self.prev,
                                self.next, self.bnext, self.buckets, self.ints)
        return None if math.isnan(value) else float(value)

    def insert(self, key: int, fitness: float, served: int = 0) -> None:
        kern.fec_insert(np.uint64(key), fitness, served, self.keys, self.fit, self.served,
                        self.prev, self.next, self.bnext, self.buckets, self.ints)

    def state(self) -> list[tuple[int, float, int]]:
        """(key, fitness, hits served) oldest first, as the engine saves them."""
        size = int(self.ints[kern.F_SIZE])
        keys, fit = np.zeros(size, dtype=np.uint64), np.zeros(size)
        served = np.zeros(size, dtype=np.int64)
        count = kern.fec_export(self.keys, self.fit, self.served, self.next, self.ints, keys,
                                fit, served)
        assert count == size
        return list(zip((int(k) for k in keys.tolist()), fit.tolist(), served.tolist(),
                        strict=True))

    @property
    def hits(self) -> int:
        return int(self.ints[kern.F_HITS])

    @property
    def misses(self) -> int:
        return int(self.ints[kern.F_MISSES])

    def __len__(self) -> int:
        return int(self.ints[kern.F_SIZE])


def same(table: Table, lru: FecLru) -> None:
    assert table.state() == lru.state()
    assert (table.hits, table.misses, len(table)) == (lru.hits, lru.misses, len(lru.entries))


# ---- the hash -----------------------------------------------------------------------------------


@given(st.lists(st.tuples(errors, errors, st.integers(0, 1000), st.integers(0, 10**6)),
                min_size=1, max_size=5))
@settings(max_examples=60, deadline=None)
def test_numba_hash_equals_the_python_definition(rows: list) -> None:  # type: ignore[type-arg]
    width = max(1, *(len(t) + len(v) for t, v, _, _ in rows))
    table = np.zeros((len(rows), width))
    for r, (train, valid, _, _) in enumerate(rows):
        table[r, : len(train) + len(valid)] = train + valid
    got = probe_hashes(table, np.array([len(t) for t, _, _, _ in rows]),
                       np.array([len(v) for _, v, _, _ in rows]),
                       np.array([i for _, _, i, _ in rows]), np.array([n for *_, n in rows]))
    assert got == [probe_hash(t, v, i, n) for t, v, i, n in rows]


def test_hash_reads_exact_bits_but_not_the_sign_of_zero_or_nan_payloads() -> None:
    base = key_of([0.5, 1.0], [2.0], 3, 100)
    assert key_of([0.5, 1.0], [2.0], 3, 100) == base == probe_hash([0.5, 1.0], [2.0], 3, 100)
    assert key_of([0.5, math.nextafter(1.0, 2.0)], [2.0], 3, 100) != base
    assert key_of([0.0], [], 0, 1) == key_of([-0.0], [], 0, 1)
    nan2 = np.array([0x7FF8000000000001], dtype=np.uint64).view(np.float64)[0]
    assert key_of([math.nan], [], 0, 1) == key_of([float(nan2)], [], 0, 1)


def test_hash_includes_task_index_train_size_and_the_split() -> None:
    base = key_of([0.5, 1.0], [2.0], 3, 100)
    assert key_of([0.5, 1.0], [2.0], 4, 100) != base
    assert key_of([0.5, 1.0], [2.0], 3, 0) != base
    assert key_of([0.5], [1.0, 2.0], 3, 100) != base  # stopped one step earlier


def test_hash_reads_only_the_recorded_errors_of_each_row() -> None:
    row = np.array([[0.5, 1.0, 2.0, 7.0], [0.5, 1.0, 2.0, 8.0]])
    counts = np.array([2, 2]), np.array([1, 1]), np.array([3, 3]), np.array([100, 100])
    a, b = probe_hashes(row, *counts)
    assert a == b == probe_hash([0.5, 1.0], [2.0], 3, 100)


# ---- the table ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("forget_every", "hits"), [(100, 99), (3, 2), (2, 1), (1, 1), (0, 0)])
def test_max_hits(forget_every: int, hits: int) -> None:
    # The original counts the evaluation that stored an entry as its first use (reference
    # §7.1): with forget_every = 100 an entry serves 99 hits. forget_every = 1, which configs
    # refuse as the original does, would serve one hit, as 2 does; 0 never forgets.
    assert max_hits(forget_every) == hits


def test_hit_and_miss_counts() -> None:
    table = Table(10, max_hits(100))
    assert table.lookup(1) is None
    table.insert(1, 0.25)
    assert table.lookup(1) == 0.25
    assert (table.hits, table.misses) == (1, 1)


@pytest.mark.parametrize("forget_every", [100, 3, 2, 1])
def test_an_entry_serves_max_hits_then_is_recomputed(forget_every: int) -> None:
    hits = max_hits(forget_every)
    table = Table(10, hits)
    assert table.lookup(7) is None
    table.insert(7, 0.5)
    assert [table.lookup(7) for _ in range(hits + 1)] == [0.5] * hits + [None]
    assert len(table) == 0 and (table.hits, table.misses) == (hits, 2)
    table.insert(7, 0.5)  # stored afresh, it serves as many again
    assert [table.lookup(7) for _ in range(hits + 1)] == [0.5] * hits + [None]


def test_a_restored_entry_serves_only_the_hits_it_has_left() -> None:
    table = Table(10, 4)
    table.insert(7, 0.5, served=3)
    assert [table.lookup(7) for _ in range(2)] == [0.5, None]


def test_never_forgetting() -> None:
    table = Table(10, max_hits(0))
    table.insert(7, 0.5)
    assert all(table.lookup(7) == 0.5 for _ in range(500))
    assert table.state() == [(7, 0.5, 500)]


def test_least_recently_used_is_evicted() -> None:
    table = Table(2, 0)
    table.insert(1, 0.1)
    table.insert(2, 0.2)
    table.lookup(1)  # 2 is now the least recently used
    table.insert(3, 0.3)
    assert [k for k, _, _ in table.state()] == [1, 3]
    assert table.lookup(2) is None and table.lookup(1) == 0.1 and table.lookup(3) == 0.3


def test_capacity_holds_with_colliding_and_full_width_keys() -> None:
    table, lru = Table(5, 3), FecLru(5, 3)
    buckets = len(table.buckets)
    pool = [k * buckets for k in range(12)] + [2**64 - 1 - k * buckets for k in range(12)]
    r = np.random.default_rng(1)
    for _ in range(3000):
        key = pool[int(r.integers(len(pool)))]
        got = table.lookup(key)
        assert got == lru.lookup(key)
        if got is None:
            value = float(r.random())
            table.insert(key, value)
            lru.insert(key, value)
        assert len(table) <= 5
    same(table, lru)


# Keys drawn from a small pool (so they repeat: hits), with chains in one hash bucket (multiples
# of a power of two) and keys near 2**64.
pool_keys = st.one_of(st.integers(0, 20), st.integers(0, 8).map(lambda k: k << 20),
                      st.integers(0, 4).map(lambda k: 2**64 - 1 - (k << 8)))
steps = st.lists(st.tuples(st.sampled_from(["search", "search", "insert"]), pool_keys,
                           st.floats(0.0, 1.0), st.integers(0, 10)), max_size=120)


@settings(max_examples=150, deadline=None)
@given(size=st.integers(0, 8), most=st.integers(0, 5), ops=steps)
def test_the_kernel_table_is_the_oracle_lru(size: int, most: int,
                                            ops: list[tuple[str, int, float, int]]) -> None:
    table, lru = Table(size, most), FecLru(size, most)
    for op, key, value, served in ops:
        if op == "search":  # as the search: a lookup, and an insert on a miss
            got = table.lookup(key)
            assert got == lru.lookup(key)
            if got is None:
                table.insert(key, value)
                lru.insert(key, value)
        elif key not in lru.entries:  # as a checkpoint is read: entries with served counts
            count = served % most if most else served
            table.insert(key, value, count)
            lru.insert(key, value, count)
        same(table, lru)


def test_state_round_trips_through_json_and_behaves_the_same() -> None:
    # As the engine saves the table (fec_export, oldest first) and reads it back (fec_insert
    # in that order, then the counters).
    r = np.random.default_rng(0)
    table, lru = Table(50, max_hits(4)), FecLru(50, max_hits(4))
    keys = [2**64 - 1 - k for k in r.integers(0, 80, 400).tolist()]  # 64-bit keys survive JSON
    for key in keys[:200]:
        if table.lookup(key) is None:
            table.insert(key, key / 2**64)
        if lru.lookup(key) is None:
            lru.insert(key, key / 2**64)
    saved = json.loads(json.dumps({"entries": table.state(), "hits": table.hits,
                                   "misses": table.misses}))
    copy = Table(50, max_hits(4))
    for key, fitness, served in saved["entries"]:
        copy.insert(key, fitness, served)
    copy.ints[kern.F_HITS], copy.ints[kern.F_MISSES] = saved["hits"], saved["misses"]
    same(copy, lru)
    for key in keys[200:]:
        a, b, c = table.lookup(key), copy.lookup(key), lru.lookup(key)
        assert a == b == c
        if a is None:
            table.insert(key, 0.5)
            copy.insert(key, 0.5)
            lru.insert(key, 0.5)
    same(table, lru)
    same(copy, lru)
