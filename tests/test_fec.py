"""The functional equivalence cache: hashing of probe errors, LRU, forgetting, saved state."""

from __future__ import annotations

import json
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from azdsl.fec import FecCache, LruMemo, probe_hash, probe_hashes

errors = st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=20)


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
    base = probe_hash([0.5, 1.0], [2.0], 3, 100)
    assert probe_hash([0.5, 1.0], [2.0], 3, 100) == base
    assert probe_hash([0.5, math.nextafter(1.0, 2.0)], [2.0], 3, 100) != base
    assert probe_hash([0.0], [], 0, 1) == probe_hash([-0.0], [], 0, 1)
    nan2 = np.array([0x7FF8000000000001], dtype=np.uint64).view(np.float64)[0]
    assert probe_hash([math.nan], [], 0, 1) == probe_hash([float(nan2)], [], 0, 1)


def test_hash_includes_task_index_train_size_and_the_split() -> None:
    base = probe_hash([0.5, 1.0], [2.0], 3, 100)
    assert probe_hash([0.5, 1.0], [2.0], 4, 100) != base
    assert probe_hash([0.5, 1.0], [2.0], 3, 0) != base
    assert probe_hash([0.5], [1.0, 2.0], 3, 100) != base  # stopped one step earlier


def test_hit_and_miss_counts() -> None:
    cache = FecCache(10, 100)
    assert cache.lookup(1) is None
    cache.insert(1, 0.25)
    assert cache.lookup(1) == 0.25
    assert (cache.hits, cache.misses) == (1, 1)


def test_an_entry_serves_forget_every_less_one_hits_then_is_recomputed() -> None:
    # The original counts the evaluation that stored an entry as its first use (reference
    # §7.1): with forget_every = 100 an entry serves 99 hits, and the 100th lookup after it was
    # stored misses. forget_every = 1, which the original rejects, serves one hit, as 2 does.
    for forget, hits in ((100, 99), (3, 2), (2, 1), (1, 1)):
        cache = FecCache(10, forget_every=forget)
        assert cache.lookup(7) is None
        cache.insert(7, 0.5)
        assert [cache.lookup(7) for _ in range(hits + 1)] == [0.5] * hits + [None]
        assert len(cache) == 0 and (cache.hits, cache.misses) == (hits, 2)
        cache.insert(7, 0.5)  # stored afresh, it serves as many again
        assert cache.lookup_into([7] * (hits + 1), range(hits + 1), [0.0] * (hits + 1)) == [hits]
    never = FecCache(10, forget_every=0)
    never.insert(7, 0.5)
    assert all(never.lookup(7) == 0.5 for _ in range(500))


def test_least_recently_used_is_evicted() -> None:
    cache = FecCache(cache_size=2)
    cache.insert(1, 0.1)
    cache.insert(2, 0.2)
    cache.lookup(1)  # 2 is now the least recently used
    cache.insert(3, 0.3)
    assert cache.lookup(2) is None and cache.lookup(1) == 0.1 and cache.lookup(3) == 0.3


def test_state_round_trips_through_json_and_behaves_the_same() -> None:
    rng = np.random.default_rng(0)
    cache = FecCache(cache_size=50, forget_every=4)
    keys = rng.integers(0, 80, 400).tolist()
    big = [2**64 - 1 - k for k in keys]  # 64-bit keys survive JSON
    for key in big[:200]:
        if cache.lookup(key) is None:
            cache.insert(key, key / 2**64)
    copy = FecCache.from_state(json.loads(json.dumps(cache.state())))
    for key in big[200:]:
        a, b = cache.lookup(key), copy.lookup(key)
        assert a == b
        if a is None:
            cache.insert(key, 0.5)
            copy.insert(key, 0.5)
    assert cache.state() == copy.state()


def test_memo_is_bounded() -> None:
    memo: LruMemo[int, str] = LruMemo(2)
    memo.put(1, "a")
    memo.put(2, "b")
    assert memo.get(1) == "a"
    memo.put(3, "c")
    assert memo.get(2) is None and memo.get(1) == "a" and len(memo) == 2
    off: LruMemo[int, str] = LruMemo(0)
    off.put(1, "a")
    assert off.get(1) is None and len(off) == 0
    assert (off.hits, off.misses) == (0, 0)  # off: not even looked up


def test_lookup_into_is_lookup_task_by_task() -> None:
    rng = np.random.default_rng(3)
    one, many = FecCache(20, 3), FecCache(20, 3)
    for _ in range(300):
        keys = rng.integers(0, 40, 6).tolist()
        tasks = [t for t in range(6) if rng.random() < 0.8]
        expected = [0.0] * 6
        missing_one = []
        for t in tasks:
            value = one.lookup(keys[t])
            if value is None:
                missing_one.append(t)
            else:
                expected[t] = value
        got = [0.0] * 6
        assert many.lookup_into(keys, tasks, got) == missing_one and got == expected
        for t in missing_one:
            one.insert(keys[t], keys[t] / 40)
            many.insert(keys[t], keys[t] / 40)
    assert one.state() == many.state()
