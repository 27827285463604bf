"""Numba kernels of the search's hot path: generators, mutation, pruning, the caches.

The Python search (evolve.py, mutate.py, prune.py, scorer.py, fec.py) is the definition; these
kernels redo its per-child work on arrays, draw for draw, so a run gives the same result
either way (tests hold the two paths equal):

- `pcg_*`: numpy's PCG64 (128-bit LCG, XSL-RR output) and Generator.random(), so the kernel
  continues the very generators the Python path uses (their state dicts are exchanged).
- `mutate_into`: mutate.mutate on array programs, consuming uniforms in the same order and in
  the same blocks of 16 (mutate._Draws); `random_into`: mutate.random_program (random search).
- `prune_lower`: liveness.live_mask on cell bitmasks, the live code lowered to the VM's rows,
  and a 128-bit key of the live code with cells renamed as simplify.simplify renames them
  (for the structural memo: equal keys mean equal simplified programs, which score alike).
- `fec_*`: fec.FecCache as a chained hash table with an LRU list; `memo_*`: the memo;
  `hurdle_passes`: hurdles.Hurdle's window as a ring and a sorted copy.

Programs are rows (op, out, in0, in1) of cells encoded kind * 256 + index (-1: none) with
three float64 literals, Setup, Predict and Learn one after another; `n[c]` counts each
component. Op facts come from ops.py (and alter_param's choices from mutate.py) through the
tables `searchfast.op_tables` builds.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

from azdsl.kernels import INV_2_53, MIX_MUL1, MIX_MUL2, TWO_PI, mix64

Arr = npt.NDArray[Any]

U64 = np.uint64
_M32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_S11 = np.uint64(11)
_S58 = np.uint64(58)
_S63 = np.uint64(63)
_S64 = np.uint64(64)
_MUL_HI = np.uint64(2549297995355413924)
_MUL_LO = np.uint64(4865540595714422341)
_NAN_BITS = np.uint64(0x7FF8000000000000)
_ONE = np.uint64(1)
_ZERO = np.uint64(0)

# Mutation type codes (the order of mutate.MUTATION_TYPES).
ALTER_PARAM, RANDOMIZE_INSTRUCTION, RANDOMIZE_COMPONENT, INSERT, REMOVE, TRADE, \
    RANDOMIZE_ALGORITHM, IDENTITY = range(8)
# Literal init / mutation codes (searchfast maps ops.LitInit / LitMutation to these).
INIT_OPEN_PM1, INIT_PM1, INIT_UNIT, INIT_INDEX = range(4)
MUT_LOG_OR_FLIP, MUT_LOG, MUT_REDRAW_INDEX = range(3)
KIND_SHIFT = 256
FLIP_PROB = 0.1


# ---- PCG64 ------------------------------------------------------------------------------------


@njit(cache=True)
def _mul64(a: np.uint64, b: np.uint64) -> tuple[np.uint64, np.uint64]:
    """The full 128-bit product of two uint64 as (high, low)."""
    a_lo = a & _M32
    a_hi = a >> _S32
    b_lo = b & _M32
    b_hi = b >> _S32
    p0 = a_lo * b_lo
    p1 = a_lo * b_hi
    p2 = a_hi * b_lo
    p3 = a_hi * b_hi
    mid = (p0 >> _S32) + (p1 & _M32) + (p2 & _M32)
    low = (p0 & _M32) | (mid << _S32)
    high = p3 + (p1 >> _S32) + (p2 >> _S32) + (mid >> _S32)
    return high, low


@njit(cache=True)
def pcg_next64(st: Arr) -> np.uint64:
    """numpy's PCG64 next_uint64; st = (state high, state low, inc high, inc low)."""
    high, low = _mul64(st[1], _MUL_LO)
    high = high + st[1] * _MUL_HI + st[0] * _MUL_LO
    low2 = low + st[3]
    carry = _ONE if low2 < low else _ZERO
    st[0] = high + st[2] + carry
    st[1] = low2
    x = st[0] ^ st[1]
    rot = st[0] >> _S58
    return (x >> rot) | (x << ((_S64 - rot) & _S63))  # type: ignore[no-any-return]


@njit(cache=True)
def pcg_double(st: Arr) -> float:
    """Generator.random() for one float."""
    return float(pcg_next64(st) >> _S11) * INV_2_53


@njit(cache=True)
def pcg_fill(st: Arr, out: Arr) -> None:
    for i in range(out.shape[0]):
        out[i] = pcg_double(st)


# ---- draws in blocks (mutate._Draws, population.Uniforms) -------------------------------------


@njit(cache=True)
def draw(st: Arr, buf: Arr, pos: Arr) -> float:
    """The next uniform of a block-buffered stream; pos[0] is the position, pos[1] the number
    of valid entries of buf (a refill draws a whole block)."""
    p = pos[0]
    if p == pos[1]:
        pcg_fill(st, buf)
        pos[1] = buf.shape[0]
        p = 0
    pos[0] = p + 1
    return buf[p]  # type: ignore[no-any-return]


@njit(cache=True)
def _gauss(st: Arr, buf: Arr, pos: Arr) -> float:
    u1 = draw(st, buf, pos)
    u2 = draw(st, buf, pos)
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
def _init_literal(rule: int, dim: int, st: Arr, buf: Arr,
                  pos: Arr) -> float:
    if rule == INIT_INDEX:
        return float(int(draw(st, buf, pos) * dim))
    if rule == INIT_UNIT:
        return draw(st, buf, pos)
    if rule == INIT_PM1:
        return 2.0 * draw(st, buf, pos) - 1.0
    while True:
        value = 2.0 * draw(st, buf, pos) - 1.0
        if value != -1.0:
            return value


@njit(cache=True)
def _fresh(op: int, rows: Arr, lits: Arr, at: int,
           t_out: Arr, t_arity: Arr, t_in: Arr,
           t_nlit: Arr, t_init: Arr, mem: Arr,
           dim: int, st: Arr, buf: Arr, pos: Arr) -> None:
    """A fresh instruction of op `op` written at row `at` (mutate._fresh)."""
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
            rows[at, 2 + i] = kind * KIND_SHIFT + int(draw(st, buf, pos) * mem[kind])
        rows[at, 1] = _out_cell(out_kind, int(draw(st, buf, pos) * n_out))
        for k in range(t_nlit[op]):
            lits[at, k] = _init_literal(t_init[op, k], dim, st, buf, pos)
        return
    combos = n_out
    for i in range(arity):
        combos *= int(mem[t_in[op, i]])
    combo = int(draw(st, buf, pos) * combos)
    rows[at, 1] = _out_cell(out_kind, combo % n_out)
    combo //= n_out
    for i in range(arity - 1, -1, -1):
        count = int(mem[t_in[op, i]])
        rows[at, 2 + i] = t_in[op, i] * KIND_SHIFT + combo % count
        combo //= count


@njit(cache=True)
def mutate_into(
    rows: Arr, lits: Arr, n: Arr,
    st: Arr, buf: Arr, pos: Arr,
    t_out: Arr, t_arity: Arr, t_in: Arr,
    t_nlit: Arr, t_init: Arr, t_mut: Arr,
    t_alter: Arr, t_nalter: Arr,
    mem: Arr, allowed: Arr, n_allowed: Arr,
    mutable: Arr, handlers: Arr, mins: Arr,
    maxs: Arr, dim: int, mutate_prob: float,
) -> None:
    """Mutate the program in rows/lits/n in place, exactly as mutate.mutate would (a fresh
    block of draws: pos is reset here)."""
    pos[0] = 0
    pos[1] = 0
    if mutate_prob < 1.0 and not draw(st, buf, pos) < mutate_prob:
        return
    handler = handlers[int(draw(st, buf, pos) * handlers.shape[0])]
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
                op = allowed[c, int(draw(st, buf, pos) * n_allowed[c])]
                _fresh(op, rows, lits, start + k, t_out, t_arity, t_in, t_nlit, t_init, mem,
                       dim, st, buf, pos)
        return
    c = mutable[int(draw(st, buf, pos) * n_mutable)]
    size = n[c]
    start = _start(n, c)
    if handler == ALTER_PARAM:
        if size == 0:
            return
        at = start + int(draw(st, buf, pos) * size)
        op = rows[at, 0]
        out_kind = t_out[op]
        if out_kind < 0:
            return
        arity = t_arity[op]
        f = t_alter[op, int(draw(st, buf, pos) * t_nalter[op])]
        if f <= arity:
            if f < arity:
                kind = t_in[op, f]
                count = int(mem[kind])
                if count == 0:
                    return
                rows[at, 2 + f] = kind * KIND_SHIFT + int(draw(st, buf, pos) * count)
            else:
                count = _out_count(out_kind, mem)
                if count <= 0:
                    return
                rows[at, 1] = _out_cell(out_kind, int(draw(st, buf, pos) * count))
            return
        k = f - arity - 1
        rule = t_mut[op, k]
        if rule == MUT_REDRAW_INDEX:
            lits[at, k] = float(int(draw(st, buf, pos) * dim))
        elif rule == MUT_LOG_OR_FLIP and draw(st, buf, pos) < FLIP_PROB:
            lits[at, k] = -lits[at, k]
        else:
            lits[at, k] = lits[at, k] * math.exp(_gauss(st, buf, pos))
        return
    if handler == RANDOMIZE_INSTRUCTION:
        if size == 0:
            return
        at = start + int(draw(st, buf, pos) * size)
        op = allowed[c, int(draw(st, buf, pos) * n_allowed[c])]
        _fresh(op, rows, lits, at, t_out, t_arity, t_in, t_nlit, t_init, mem, dim, st, buf,
               pos)
        return
    if handler == RANDOMIZE_COMPONENT:
        for k in range(size):
            op = allowed[c, int(draw(st, buf, pos) * n_allowed[c])]
            _fresh(op, rows, lits, start + k, t_out, t_arity, t_in, t_nlit, t_init, mem, dim,
                   st, buf, pos)
        return
    if handler == INSERT:
        if size >= maxs[c]:
            return
        gap = int(draw(st, buf, pos) * (size + 1))
        _open(rows, lits, n, start + gap)
        n[c] += 1
        op = allowed[c, int(draw(st, buf, pos) * n_allowed[c])]
        _fresh(op, rows, lits, start + gap, t_out, t_arity, t_in, t_nlit, t_init, mem, dim,
               st, buf, pos)
        return
    if handler == REMOVE:
        if size <= mins[c] or size == 0:
            return
        at = start + int(draw(st, buf, pos) * size)
        _close(rows, lits, n, at)
        n[c] -= 1
        return
    # TRADE: insert a fresh instruction, then remove one of the enlarged list
    gap = int(draw(st, buf, pos) * (size + 1))
    _open(rows, lits, n, start + gap)
    n[c] += 1
    op = allowed[c, int(draw(st, buf, pos) * n_allowed[c])]
    _fresh(op, rows, lits, start + gap, t_out, t_arity, t_in, t_nlit, t_init, mem, dim, st,
           buf, pos)
    removed = int(draw(st, buf, pos) * (size + 1))
    _close(rows, lits, n, start + removed)
    n[c] -= 1


@njit(cache=True)
def random_into(
    rows: Arr, lits: Arr, n: Arr,
    st: Arr, buf: Arr, pos: Arr,
    t_out: Arr, t_arity: Arr, t_in: Arr,
    t_nlit: Arr, t_init: Arr,
    mem: Arr, allowed: Arr, n_allowed: Arr,
    init_sizes: Arr, dim: int,
) -> None:
    """A fresh random program of the init sizes in rows/lits/n, exactly as
    mutate.random_program would draw it (a fresh block of draws: pos is reset here)."""
    pos[0] = 0
    pos[1] = 0
    at = 0
    for c in range(3):
        n[c] = init_sizes[c]
        for _ in range(init_sizes[c]):
            # A component without ops is all `pass` (op 0, which _fresh writes drawing nothing).
            op = allowed[c, int(draw(st, buf, pos) * n_allowed[c])] if n_allowed[c] > 0 else 0
            _fresh(op, rows, lits, at, t_out, t_arity, t_in, t_nlit, t_init, mem, dim, st, buf,
                   pos)
            at += 1


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
def _bit(cell: int, bit_base: Arr) -> np.uint64:
    if cell < 0:
        return _ZERO
    return _ONE << np.uint64(bit_base[cell // KIND_SHIFT] + cell % KIND_SHIFT)


@njit(cache=True)
def _backward(rows: Arr, start: int, stop: int, live: np.uint64,
              flags: Arr, t_partial: Arr,
              bit_base: Arr) -> np.uint64:
    for r in range(stop - 1, start - 1, -1):
        out = _bit(rows[r, 1], bit_base)
        if out & live:
            flags[r] = 1
            if not t_partial[rows[r, 0]]:
                live = live & ~out
            live = live | _bit(rows[r, 2], bit_base) | _bit(rows[r, 3], bit_base)
        else:
            flags[r] = 0
    return live


@njit(cache=True)
def prune_lower(
    rows: Arr, lits: Arr, n: Arr,
    flags: Arr, t_partial: Arr, t_random: Arr,
    t_nlit: Arr, t_littype: Arr, bit_base: Arr,
    keep: np.uint64, prediction: np.uint64,
    vm_base: Arr, vm_width: Arr, row_width: int,
    float_width: int, out_ints: Arr, out_floats: Arr,
    out_bounds: Arr, key: Arr,
) -> bool:
    """Live code (liveness.live_mask) lowered to VM rows; key[0:2] its 128-bit key. Returns
    whether it holds random ops."""
    s_end = n[0]
    p_end = s_end + n[1]
    l_end = p_end + n[2]
    predict_in = _ZERO
    learn_in = _ZERO
    while True:
        after_predict = prediction | ((learn_in | predict_in) & keep)
        new_predict_in = _backward(rows, s_end, p_end, after_predict, flags, t_partial,
                                   bit_base)
        new_learn_in = _backward(rows, p_end, l_end, new_predict_in & keep, flags, t_partial,
                                 bit_base)
        if new_predict_in == predict_in and new_learn_in == learn_in:
            break
        predict_in = new_predict_in
        learn_in = new_learn_in
    _backward(rows, 0, s_end, predict_in & keep, flags, t_partial, bit_base)
    h1 = mix64(np.uint64(0x5EED))
    h2 = mix64(np.uint64(0xC0FFEE))
    canon = np.full(64, -1, dtype=np.int64)
    canon[0] = 0  # s0
    canon[1] = 1  # s1
    canon[bit_base[1]] = KIND_SHIFT  # v0
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
            # The key names cells canonically (azdsl.simplify: in order of first appearance,
            # output before inputs; s0, s1, v0 kept), so renamed twins share a memo entry.
            part = np.uint64(op)
            for j in range(3):
                cell = rows[r, 1 + j]
                name = -1
                if cell >= 0:
                    kind = cell // KIND_SHIFT
                    slot = bit_base[kind] + cell % KIND_SHIFT
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
# entry serves (FecCache.max_hits; 0: no limit)]
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
    """FecCache.lookup: the fitness on a hit, NaN on a miss (counted either way)."""
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
    """FecCache.insert (a key not in the table), then evict the oldest beyond capacity."""
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
    """The entries oldest first (FecCache.state's order); returns their number."""
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
# ints: [head of the ring `order` (its oldest value), values held, recorded, stopped]
H_HEAD, H_COUNT, H_RECORDED, H_STOPPED = range(4)


@njit(cache=True)
def hurdle_passes(partial: float, percentile: float, warmup: int, order: Arr, ordered: Arr,
                  ints: Arr) -> bool:
    """hurdles.Hurdle.passes: `order` is the window oldest first (a ring), `ordered` the same
    values sorted."""
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
