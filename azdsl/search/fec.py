"""Functional equivalence checking (docs/search.md) and the structural cache.

FEC: before a full evaluation, a child runs on the first few training and validation examples
of each task with a fixed random stream; the exact errors, the task index and the number of
training examples of the real run hash to 64 bits (`probe_hashes_into`, here), and an LRU
cache (search.kernel.fec_*) maps that hash to the task's fitness. A hit reuses the fitness; an
entry is dropped once it has served forget_every - 1 hits (`max_hits`, as the original), so
it is recomputed the next time. The cache changes results (only through that documented
reuse), so checkpoints keep it (azdsl.search.engine).

The structural cache is a memo, not a source of reuse: it remembers, per simplified program,
the probe hashes and train steps (always deterministic: the probe stream is fixed) and the
full per-task fitness and train steps (only for programs without live random ops). The search
replays the FEC bookkeeping from it exactly as if the probe and the evaluation had run, so it
never changes a result, and it need not be saved.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

from azdsl.running.kernels import mix64

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
UIntArray = npt.NDArray[np.uint64]

# The fixed evaluation seed of every probe run ("a fixed random stream", reference: 235732282).
PROBE_SEED = 235732282
_HASH_SEED = 42
_NAN_BITS = 0x7FF8000000000000


@njit(cache=True)
def probe_hashes_into(errors: FloatArray, train_recorded: IntArray, valid_recorded: IntArray,
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
    probe_hashes_into(errors, train_recorded, valid_recorded, task_index, num_train, out)
    return [int(k) for k in out.tolist()]


def max_hits(forget_every: int) -> int:
    """The hits an entry serves before it is forgotten (0: no limit). As the original's
    FECCache::Find: an entry's count starts at 1 when it is stored and grows by one per hit,
    and the hit that brings it to forget_every is the entry's last, so it serves
    forget_every - 1 hits (configs refuse 1, as the original does; here it would serve 1)."""
    return max(forget_every - 1, 1) if forget_every else 0
