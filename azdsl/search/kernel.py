"""Numba kernels of the search's per-child step: draws, mutation, pruning, the caches, lineage.

This is the one definition of the step (azdsl.search.loop composes it with the VM; tests run it
as plain Python too, and hold it to the Program-level oracle under tests/):

- `draw`: uniforms from the counter-based generator of azdsl.running.rng (`kernels.uniform01`): a
  child's draws are a pure function of its stream key and their count, so any individual can
  be replayed from its key alone (lineage) and no generator state needs saving.
- `mutate_into`: the eight mutation types on array programs (language.rows), recording what they
  did; `random_into`: a fresh random program (initial programs, random search), and
  `keep_fixed_into` to keep the fixed components of a given initial program.
- `prune_lower`: the live code (liveness.live_rows) lowered to the VM's rows, and a 128-bit key
  of it with cells renamed as simplify.simplify renames them (for the structural memo: equal
  keys mean equal simplified programs, which score alike).
- `fec_*`: the FEC cache as a chained hash table with an LRU list; `memo_slot`: the memo;
  `hurdle_passes`: the hurdle's window as a ring and a sorted copy.
- `node_*`: the lineage table (azdsl.search.lineage).

Op facts come from ops.py (and alter_param's choices from mutate.py) through the tables
`mutate.op_tables` builds.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

from azdsl.language.rows import KIND_SHIFT
from azdsl.running.kernels import MIX_MUL1, MIX_MUL2, TWO_PI, live_rows, mix64, uniform01

Arr = npt.NDArray[Any]


_NAN_BITS = np.uint64(0x7FF8000000000000)
_ONE = np.uint64(1)

# What makes an individual, by code: the eight mutation types, then mutate_prob drew no
# mutation, an initial program, a random program (random search), a program put into a
# population from outside without a lineage.
RECORD_TYPES: tuple[str, ...] = (
    "alter_param", "randomize_instruction", "randomize_component", "insert_instruction",
    "remove_instruction", "trade_instruction", "randomize_algorithm", "identity",
    "none", "initial", "random", "injected",
)
ALTER_PARAM, RANDOMIZE_INSTRUCTION, RANDOMIZE_COMPONENT, INSERT, REMOVE, TRADE, \
    RANDOMIZE_ALGORITHM, IDENTITY, NONE, INITIAL, RANDOM, INJECTED = range(len(RECORD_TYPES))
# Literal init / mutation codes (mutate.op_tables maps ops.LitInit / LitMutation to these).
INIT_OPEN_PM1, INIT_PM1, INIT_UNIT, INIT_INDEX = range(4)
MUT_LOG_OR_FLIP, MUT_LOG, MUT_REDRAW_INDEX = range(3)
FLIP_PROB = 0.1


# ---- draws -------------------------------------------------------------------------------------


@njit(cache=True)
def draw(d: Arr) -> float:
    """The next uniform in [0, 1) of a stream: d = (key, draws taken so far)."""
    u = uniform01(d[0], d[1])
    d[1] += _ONE
    return u


@njit(cache=True)
def _gauss(d: Arr) -> float:
    u1 = draw(d)
    u2 = draw(d)
    return math.sqrt(-2.0 * math.log(1.0 - u1)) * math.cos(TWO_PI * u2)


# ---- mutation -------------------------------------------------------------------------------


@njit(cache=True)
def _out_count(kind: int, mem: Arr) -> int:
    """Output candidates of a kind: every cell but s0 and v0."""
    return int(mem[kind]) - (1 if kind < 2 else 0)


@njit(cache=True)
def _out_cell(kind: int, j: int) -> int:
    return kind * KIND_SHIFT + j + (1 if kind < 2 else 0)


@njit(cache=True)
def _init_literal(rule: int, dim: int, d: Arr) -> float:
    if rule == INIT_INDEX:
        return float(int(draw(d) * dim))
    if rule == INIT_UNIT:
        return draw(d)
    if rule == INIT_PM1:
        return 2.0 * draw(d) - 1.0
    while True:
        value = 2.0 * draw(d) - 1.0
        if value != -1.0:
            return value


@njit(cache=True)
def _fresh(op: int, rows: Arr, lits: Arr, at: int,
           t_out: Arr, t_arity: Arr, t_in: Arr,
           t_nlit: Arr, t_init: Arr, mem: Arr,
           dim: int, d: Arr) -> None:
    """A fresh instruction of op `op` written at row `at`: cells uniform (outputs never s0 or
    v0), literals per the op row; a literal-free op draws its whole cell combination with one
    uniform."""
    rows[at, 0] = op
    rows[at, 1] = -1
    rows[at, 2] = -1
    rows[at, 3] = -1
    lits[at, 0] = 0.0
    lits[at, 1] = 0.0
    lits[at, 2] = 0.0
    out_kind = t_out[op]
    if out_kind < 0:
        rows[at, 0] = 0
        return
    arity = t_arity[op]
    n_out = _out_count(out_kind, mem)
    if t_nlit[op] > 0:
        for i in range(arity):
            kind = t_in[op, i]
            rows[at, 2 + i] = kind * KIND_SHIFT + int(draw(d) * mem[kind])
        rows[at, 1] = _out_cell(out_kind, int(draw(d) * n_out))
        for k in range(t_nlit[op]):
            lits[at, k] = _init_literal(t_init[op, k], dim, d)
        return
    combos = n_out
    for i in range(arity):
        combos *= int(mem[t_in[op, i]])
    combo = int(draw(d) * combos)
    rows[at, 1] = _out_cell(out_kind, combo % n_out)
    combo //= n_out
    for i in range(arity - 1, -1, -1):
        count = int(mem[t_in[op, i]])
        rows[at, 2 + i] = t_in[op, i] * KIND_SHIFT + combo % count
        combo //= count


@njit(cache=True)
def mutate_into(
    rows: Arr, lits: Arr, n: Arr, d: Arr, rec: Arr,
    t_out: Arr, t_arity: Arr, t_in: Arr,
    t_nlit: Arr, t_init: Arr, t_mut: Arr,
    t_alter: Arr, t_nalter: Arr,
    mem: Arr, allowed: Arr, n_allowed: Arr,
    mutable: Arr, handlers: Arr, mins: Arr,
    maxs: Arr, dim: int, mutate_prob: float,
) -> None:
    """Mutate the program in rows/lits/n in place, drawing from stream d: with probability
    mutate_prob one mutation of a type drawn from `handlers`, else none. rec receives (type
    code, or NONE; component, or -1; position, or -1): the instruction changed or removed, or
    the gap an instruction went into (insert, trade)."""
    rec[0] = NONE
    rec[1] = -1
    rec[2] = -1
    if mutate_prob < 1.0 and not draw(d) < mutate_prob:
        return
    handler = handlers[int(draw(d) * handlers.shape[0])]
    rec[0] = handler
    n_mutable = mutable.shape[0]
    if n_mutable == 0 and handler != IDENTITY and handler != RANDOMIZE_ALGORITHM:
        return
    if handler == IDENTITY:
        return
    if handler == RANDOMIZE_ALGORITHM:
        for m in range(n_mutable):
            c = mutable[m]
            start = _start(n, c)
            for k in range(n[c]):
                op = allowed[c, int(draw(d) * n_allowed[c])]
                _fresh(op, rows, lits, start + k, t_out, t_arity, t_in, t_nlit, t_init, mem,
                       dim, d)
        return
    c = mutable[int(draw(d) * n_mutable)]
    rec[1] = c
    size = n[c]
    start = _start(n, c)
    if handler == ALTER_PARAM:
        if size == 0:
            return
        k = int(draw(d) * size)
        rec[2] = k
        at = start + k
        op = rows[at, 0]
        out_kind = t_out[op]
        if out_kind < 0:
            return
        arity = t_arity[op]
        f = t_alter[op, int(draw(d) * t_nalter[op])]
        if f <= arity:
            if f < arity:
                kind = t_in[op, f]
                count = int(mem[kind])
                if count == 0:
                    return
                rows[at, 2 + f] = kind * KIND_SHIFT + int(draw(d) * count)
            else:
                count = _out_count(out_kind, mem)
                if count <= 0:
                    return
                rows[at, 1] = _out_cell(out_kind, int(draw(d) * count))
            return
        j = f - arity - 1
        rule = t_mut[op, j]
        if rule == MUT_REDRAW_INDEX:
            lits[at, j] = float(int(draw(d) * dim))
        elif rule == MUT_LOG_OR_FLIP and draw(d) < FLIP_PROB:
            lits[at, j] = -lits[at, j]
        else:
            lits[at, j] = lits[at, j] * math.exp(_gauss(d))
        return
    if handler == RANDOMIZE_INSTRUCTION:
        if size == 0:
            return
        k = int(draw(d) * size)
        rec[2] = k
        op = allowed[c, int(draw(d) * n_allowed[c])]
        _fresh(op, rows, lits, start + k, t_out, t_arity, t_in, t_nlit, t_init, mem, dim, d)
        return
    if handler == RANDOMIZE_COMPONENT:
        for k in range(size):
            op = allowed[c, int(draw(d) * n_allowed[c])]
            _fresh(op, rows, lits, start + k, t_out, t_arity, t_in, t_nlit, t_init, mem, dim,
                   d)
        return
    if handler == INSERT:
        if size < maxs[c]:
            rec[2] = _insert(rows, lits, n, c, start, d, t_out, t_arity, t_in, t_nlit, t_init,
                             mem, allowed, n_allowed, dim)
        return
    if handler == REMOVE:
        if size <= mins[c] or size == 0:
            return
        k = int(draw(d) * size)
        rec[2] = k
        _close(rows, lits, n, start + k)
        n[c] -= 1
        return
    # TRADE: insert a fresh instruction, then remove one of the enlarged list
    rec[2] = _insert(rows, lits, n, c, start, d, t_out, t_arity, t_in, t_nlit, t_init, mem,
                     allowed, n_allowed, dim)
    removed = int(draw(d) * (size + 1))
    _close(rows, lits, n, start + removed)
    n[c] -= 1


@njit(cache=True)
def _insert(rows: Arr, lits: Arr, n: Arr, c: int, start: int, d: Arr, t_out: Arr,
            t_arity: Arr, t_in: Arr, t_nlit: Arr, t_init: Arr, mem: Arr, allowed: Arr,
            n_allowed: Arr, dim: int) -> int:
    """A fresh instruction into a gap of component c (at `start`) drawn uniformly; returns
    the gap."""
    gap = int(draw(d) * (n[c] + 1))
    _open(rows, lits, n, start + gap)
    n[c] += 1
    op = allowed[c, int(draw(d) * n_allowed[c])]
    _fresh(op, rows, lits, start + gap, t_out, t_arity, t_in, t_nlit, t_init, mem, dim, d)
    return gap


@njit(cache=True)
def random_into(
    rows: Arr, lits: Arr, n: Arr, d: Arr,
    t_out: Arr, t_arity: Arr, t_in: Arr,
    t_nlit: Arr, t_init: Arr,
    mem: Arr, allowed: Arr, n_allowed: Arr,
    init_sizes: Arr, dim: int,
) -> None:
    """A fresh random program of the init sizes in rows/lits/n, drawn from stream d: every
    instruction of a component with ops drawn afresh, the others `pass`."""
    at = 0
    for c in range(3):
        n[c] = init_sizes[c]
        for _ in range(init_sizes[c]):
            # A component without ops is all `pass` (op 0, which _fresh writes drawing nothing).
            op = allowed[c, int(draw(d) * n_allowed[c])] if n_allowed[c] > 0 else 0
            _fresh(op, rows, lits, at, t_out, t_arity, t_in, t_nlit, t_init, mem, dim, d)
            at += 1


@njit(cache=True)
def keep_fixed_into(rows: Arr, lits: Arr, n: Arr, n_allowed: Arr, base_rows: Arr,
                    base_lits: Arr, base_n: Arr) -> None:
    """Components without ops replaced by the base program's (random search from a given
    initial program: the fixed components are the initial program's, as in its population);
    the others kept. Draws nothing."""
    total = n[0] + n[1] + n[2]
    drawn_rows = rows[:total].copy()
    drawn_lits = lits[:total].copy()
    at = 0
    src = 0
    base = 0
    for c in range(3):
        drawn = n[c]
        if n_allowed[c] == 0:
            for r in range(base_n[c]):
                rows[at] = base_rows[base + r]
                lits[at] = base_lits[base + r]
                at += 1
            n[c] = base_n[c]
        else:
            for r in range(drawn):
                rows[at] = drawn_rows[src + r]
                lits[at] = drawn_lits[src + r]
                at += 1
        src += drawn
        base += base_n[c]


@njit(cache=True)
def _start(n: Arr, c: int) -> int:
    start = 0
    for k in range(c):
        start += n[k]
    return start


@njit(cache=True)
def _open(rows: Arr, lits: Arr, n: Arr,
          at: int) -> None:
    """Shift rows at.. one down (room for an inserted instruction)."""
    total = n[0] + n[1] + n[2]
    for r in range(total, at, -1):
        for j in range(4):
            rows[r, j] = rows[r - 1, j]
        for j in range(3):
            lits[r, j] = lits[r - 1, j]


@njit(cache=True)
def _close(rows: Arr, lits: Arr, n: Arr,
           at: int) -> None:
    """Remove row `at`, shifting the rest up."""
    total = n[0] + n[1] + n[2]
    for r in range(at, total - 1):
        for j in range(4):
            rows[r, j] = rows[r + 1, j]
        for j in range(3):
            lits[r, j] = lits[r + 1, j]


# ---- pruning, lowering and the key of the live code -------------------------------------------


@njit(cache=True)
def prune_lower(
    rows: Arr, lits: Arr, n: Arr, flags: Arr, live: Arr, canon: Arr,
    t_partial: Arr, t_random: Arr, t_nlit: Arr, t_littype: Arr, cell_base: Arr,
    vm_base: Arr, vm_width: Arr, row_width: int, float_width: int,
    out_ints: Arr, out_floats: Arr, out_bounds: Arr, key: Arr,
) -> bool:
    """Live code (liveness.live_rows; `live`: its scratch) lowered to VM rows; key[0:2] its
    128-bit key (`canon`: a scratch entry per cell). Returns whether it holds random ops."""
    live_rows(rows, n, cell_base, t_partial, flags, live)
    s_end = n[0]
    p_end = s_end + n[1]
    l_end = p_end + n[2]
    h1 = mix64(np.uint64(0x5EED))
    h2 = mix64(np.uint64(0xC0FFEE))
    canon[:] = -1
    canon[0] = 0  # s0
    canon[1] = 1  # s1
    canon[cell_base[1]] = KIND_SHIFT  # v0
    next_name = np.array([2, 1, 0], dtype=np.int64)
    count = 0
    random = False
    bounds_at = (0, s_end, p_end, l_end)
    for c in range(3):
        out_bounds[c] = count
        h1 = mix64(h1 ^ np.uint64(c + 1000))
        h2 = mix64(h2 + np.uint64(c + 7))
        rank = 0
        for r in range(bounds_at[c], bounds_at[c + 1]):
            if not flags[r]:
                continue
            op = rows[r, 0]
            base = count * row_width
            for j in range(row_width):
                out_ints[base + j] = 0
            out_ints[base + 6] = -1  # the ordinal column: -1 unless a live random op
            for j in range(float_width):
                out_floats[count * float_width + j] = 0.0
            out_ints[base] = op
            for j in range(3):
                cell = rows[r, 1 + j]
                if cell >= 0:
                    kind = cell // KIND_SHIFT
                    out_ints[base + 1 + j] = vm_base[kind] + (cell % KIND_SHIFT) * vm_width[kind]
            index_col = 4
            float_col = 0
            for k in range(t_nlit[op]):
                value = lits[r, k]
                if t_littype[op, k] == 1:
                    out_ints[base + index_col] = int(value)
                    index_col += 1
                else:
                    out_floats[count * float_width + float_col] = value
                    float_col += 1
            if t_random[op]:
                out_ints[base + 6] = rank
                rank += 1
                random = True
            # The key names cells canonically (language.simplify: in order of first appearance,
            # output before inputs; s0, s1, v0 kept), so renamed twins share a memo entry.
            part = np.uint64(op)
            for j in range(3):
                cell = rows[r, 1 + j]
                name = -1
                if cell >= 0:
                    kind = cell // KIND_SHIFT
                    slot = cell_base[kind] + cell % KIND_SHIFT
                    if canon[slot] < 0:
                        canon[slot] = kind * KIND_SHIFT + next_name[kind]
                        next_name[kind] += 1
                    name = canon[slot]
                part = part | (np.uint64(name + 1) << np.uint64(8 + 16 * j))
            h1 = mix64(h1 ^ part)
            h2 = mix64(h2 + part * MIX_MUL2)
            for k in range(t_nlit[op]):
                value = lits[r, k]
                bits = _NAN_BITS if value != value else np.float64(value).view(np.uint64)
                h1 = mix64(h1 ^ bits)
                h2 = mix64(h2 + bits * MIX_MUL1)
            count += 1
    out_bounds[3] = count
    key[0] = h1
    key[1] = h2
    return random


# ---- the FEC cache: a chained hash table with an LRU list --------------------------------------
# ints: [size, head (oldest), tail (newest), free head, hits, misses, capacity, the hits an
# entry serves (fec.max_hits; 0: no limit)]
F_SIZE, F_HEAD, F_TAIL, F_FREE, F_HITS, F_MISSES, F_CAP, F_FORGET = range(8)


@njit(cache=True)
def fec_find(key: np.uint64, keys: Arr, bucket_next: Arr,
             buckets: Arr) -> int:
    slot = buckets[key & np.uint64(buckets.shape[0] - 1)]
    while slot >= 0:
        if keys[slot] == key:
            return int(slot)
        slot = bucket_next[slot]
    return -1


@njit(cache=True)
def _lru_unlink(slot: int, prev: Arr, nxt: Arr,
                ints: Arr) -> None:
    p = prev[slot]
    q = nxt[slot]
    if p >= 0:
        nxt[p] = q
    else:
        ints[F_HEAD] = q
    if q >= 0:
        prev[q] = p
    else:
        ints[F_TAIL] = p


@njit(cache=True)
def _lru_append(slot: int, prev: Arr, nxt: Arr,
                ints: Arr) -> None:
    tail = ints[F_TAIL]
    prev[slot] = tail
    nxt[slot] = -1
    if tail >= 0:
        nxt[tail] = slot
    else:
        ints[F_HEAD] = slot
    ints[F_TAIL] = slot


@njit(cache=True)
def fec_delete(slot: int, keys: Arr, prev: Arr, nxt: Arr,
               bucket_next: Arr, buckets: Arr,
               ints: Arr) -> None:
    b = keys[slot] & np.uint64(buckets.shape[0] - 1)
    at = buckets[b]
    if at == slot:
        buckets[b] = bucket_next[slot]
    else:
        while bucket_next[at] != slot:
            at = bucket_next[at]
        bucket_next[at] = bucket_next[slot]
    _lru_unlink(slot, prev, nxt, ints)
    nxt[slot] = ints[F_FREE]
    ints[F_FREE] = slot
    ints[F_SIZE] -= 1


@njit(cache=True)
def fec_lookup(key: np.uint64, keys: Arr, fitness: Arr,
               served: Arr, prev: Arr, nxt: Arr,
               bucket_next: Arr, buckets: Arr,
               ints: Arr) -> float:
    """The fitness on a hit (the entry refreshed, or forgotten after its max hits), NaN on a
    miss (counted either way)."""
    slot = fec_find(key, keys, bucket_next, buckets)
    if slot < 0:
        ints[F_MISSES] += 1
        return math.nan
    ints[F_HITS] += 1
    value = fitness[slot]
    served[slot] += 1
    forget = ints[F_FORGET]
    if forget > 0 and served[slot] >= forget:
        fec_delete(slot, keys, prev, nxt, bucket_next, buckets, ints)
    else:
        _lru_unlink(slot, prev, nxt, ints)
        _lru_append(slot, prev, nxt, ints)
    return value  # type: ignore[no-any-return]


@njit(cache=True)
def fec_insert(key: np.uint64, value: float, count: int, keys: Arr,
               fitness: Arr, served: Arr, prev: Arr,
               nxt: Arr, bucket_next: Arr,
               buckets: Arr, ints: Arr) -> None:
    """Insert a key not in the table, then evict the oldest beyond capacity."""
    slot = ints[F_FREE]
    ints[F_FREE] = nxt[slot]
    keys[slot] = key
    fitness[slot] = value
    served[slot] = count
    b = key & np.uint64(buckets.shape[0] - 1)
    bucket_next[slot] = buckets[b]
    buckets[b] = slot
    _lru_append(slot, prev, nxt, ints)
    ints[F_SIZE] += 1
    while ints[F_SIZE] > ints[F_CAP]:
        fec_delete(ints[F_HEAD], keys, prev, nxt, bucket_next, buckets, ints)


@njit(cache=True)
def fec_export(keys: Arr, fitness: Arr, served: Arr,
               nxt: Arr, ints: Arr, out_keys: Arr,
               out_fitness: Arr, out_served: Arr) -> int:
    """The entries oldest first (least recently used first); returns their number."""
    slot = ints[F_HEAD]
    k = 0
    while slot >= 0:
        out_keys[k] = keys[slot]
        out_fitness[k] = fitness[slot]
        out_served[k] = served[slot]
        k += 1
        slot = nxt[slot]
    return k


# ---- the structural memo: open addressing on the 128-bit key -----------------------------------


@njit(cache=True)
def memo_slot(key: Arr, keys: Arr, used: Arr) -> int:
    """The slot of `key`, or of the empty slot where it would go (-1 - slot)."""
    mask = keys.shape[0] - 1
    at = np.int64(key[0] & np.uint64(mask))
    while used[at]:
        if keys[at, 0] == key[0] and keys[at, 1] == key[1]:
            return int(at)
        at = (at + 1) & mask
    return int(-1 - at)


# ---- hurdles: the window of partial fitnesses -------------------------------------------------
# Hurdles (the paper's "Full" method) stop a weak child after the first few search tasks.
#
# A child is first scored on the first `tasks` search tasks only. Its fitness there (combined as
# the search combines tasks) is compared with the `percentile`-th percentile of the same partial
# fitness of the last `window` children (the population, with aging evolution: the window is the
# population size). Below it, the child is not evaluated further: the tasks it did not run count
# as fitness 0 (the floor, as for a program the train budget rejects), so its fitness is the
# combination of its first tasks' fitnesses and zeros. A stopped child thus ranks below every
# child that passed with a similar score and wins a tournament only against other stopped ones;
# its partial fitness alone would not do, as the first tasks may be easier than the rest. At or
# above the hurdle, the child is scored on the remaining tasks as usual.
# Every child's partial fitness enters the window, stopped or not. Until `warmup` children have
# been recorded every child passes (the hurdle needs a population to compare with).
#
# Everything is deterministic: the percentile is the lower nearest rank of the sorted window,
# `sorted[floor(p / 100 * (n - 1))]`, and the window is saved in checkpoints (`state`).
# ints: [head of the ring `order` (its oldest value), values held, recorded, stopped]
H_HEAD, H_COUNT, H_RECORDED, H_STOPPED = range(4)


@njit(cache=True)
def hurdle_passes(partial: float, percentile: float, warmup: int, order: Arr, ordered: Arr,
                  ints: Arr) -> bool:
    """Record a child's partial fitness; whether it goes on to the remaining tasks. `order`
    is the window oldest first (a ring), `ordered` the same values sorted."""
    count = ints[H_COUNT]
    ok = True
    if ints[H_RECORDED] >= warmup and count > 0:
        ok = partial >= ordered[math.floor(percentile / 100.0 * (count - 1))]
    value = partial if partial == partial else 0.0  # a NaN counts as the floor
    window = order.shape[0]
    if count == window:  # the oldest leaves: its place in `ordered` closes
        head = ints[H_HEAD]
        oldest = order[head]
        order[head] = value
        ints[H_HEAD] = (head + 1) % window
        at = np.searchsorted(ordered[:count], oldest)
        for i in range(at, count - 1):
            ordered[i] = ordered[i + 1]
        count -= 1
    else:
        order[(ints[H_HEAD] + count) % window] = value
    at = np.searchsorted(ordered[:count], value, side="right")
    for i in range(count, at, -1):
        ordered[i] = ordered[i - 1]
    ordered[at] = value
    ints[H_COUNT] = count + 1
    ints[H_RECORDED] += 1
    if not ok:
        ints[H_STOPPED] += 1
    return ok


# ---- lineage: a table of individuals, each row pointing at its parent's -------------------------
# Rows are appended in birth order (a parent's row comes before its children's), so the table
# compacts in one backward pass. ints columns:
N_ID, N_PARENT, N_TYPE, N_COMPONENT, N_POSITION, N_INDIVIDUAL = range(6)


@njit(cache=True)
def node_add(ints: Arr, keys: Arr, fitness: Arr, count: Arr, ident: int, parent: int,
             record: Arr, individual: int, key: np.uint64, value: float) -> int:
    """Append an individual (its id, its parent's row or -1, its mutation record (type,
    component, position), its number in the experiment, its stream key and fitness); returns
    its row. The caller has made room."""
    at = count[0]
    ints[at, N_ID] = ident
    ints[at, N_PARENT] = parent
    ints[at, N_TYPE] = record[0]
    ints[at, N_COMPONENT] = record[1]
    ints[at, N_POSITION] = record[2]
    ints[at, N_INDIVIDUAL] = individual
    keys[at] = key
    fitness[at] = value
    count[0] = at + 1
    return at  # type: ignore[no-any-return]


@njit(cache=True)
def node_compact(ints: Arr, keys: Arr, fitness: Arr, count: Arr, members: Arr,
                 n_members: int, bests: Arr, n_bests: int) -> None:
    """Keep only the rows that members[:n_members] and bests[:n_bests] reach through their
    parents; every row index they and the kept rows hold is renumbered."""
    total = count[0]
    keep = np.zeros(total, dtype=np.bool_)
    for i in range(n_members):
        if members[i] >= 0:
            keep[members[i]] = True
    for i in range(n_bests):
        if bests[i] >= 0:
            keep[bests[i]] = True
    for r in range(total - 1, -1, -1):
        if keep[r] and ints[r, N_PARENT] >= 0:
            keep[ints[r, N_PARENT]] = True
    moved = np.full(total, -1, dtype=np.int64)
    at = 0
    for r in range(total):
        if not keep[r]:
            continue
        moved[r] = at
        for j in range(ints.shape[1]):
            ints[at, j] = ints[r, j]
        parent = ints[at, N_PARENT]
        ints[at, N_PARENT] = moved[parent] if parent >= 0 else -1
        keys[at] = keys[r]
        fitness[at] = fitness[r]
        at += 1
    count[0] = at
    for i in range(n_members):
        if members[i] >= 0:
            members[i] = moved[members[i]]
    for i in range(n_bests):
        if bests[i] >= 0:
            bests[i] = moved[bests[i]]
