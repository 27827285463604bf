"""The compiled search loop: the search's children in Numba, draw for draw as Python.

`FastLoop` holds one experiment's state as arrays (population, generators, FEC cache, memo,
hurdle window) and runs children in chunks with one compiled call: tournament and mutation or
a fresh random program (searchkernel), pruning and lowering, the memo, the FEC probe and
lookups, the VM evaluation (on the hurdle tasks first, with hurdles), the ring buffer. Between
chunks the Python driver (evolve.py) reports progress, checks the clock and writes
checkpoints; `export` writes the arrays back into the Python objects (Population, Uniforms,
generator states, FecCache, Hurdle), so checkpoints, resumes and the pure-Python path see one
and the same state. The loop is generated per F next to the VM module it calls (so Numba's
cache works) from `_LOOP`, whose name carries a hash of everything it inlines.

It serves every search on the VM with at most 64 memory cells: regularized evolution or random
search, with or without FEC, the memo, the train budget and hurdles. Other searches (other
backends, larger memories) run the Python loop, which defines what this one computes.
"""

from __future__ import annotations

import hashlib
import math
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from azdsl import rng as azrng
from azdsl.fec import PROBE_SEED, FecCache
from azdsl.hurdles import Hurdle
from azdsl.mutate import MUTATION_TYPES, MutationConfig, alter_choices
from azdsl.ops import OPS, Kind, LitInit, LitMutation, LitType
from azdsl.population import Population, Uniforms
from azdsl.program import Cell, Instr, Program
from azdsl.searchkernel import (
    F_CAP,
    F_FORGET,
    F_FREE,
    F_HEAD,
    F_HITS,
    F_MISSES,
    F_TAIL,
    H_COUNT,
    H_HEAD,
    H_RECORDED,
    H_STOPPED,
    INIT_INDEX,
    INIT_OPEN_PM1,
    INIT_PM1,
    INIT_UNIT,
    KIND_SHIFT,
    MUT_LOG,
    MUT_LOG_OR_FLIP,
    MUT_REDRAW_INDEX,
    fec_export,
    fec_insert,
)
from azdsl.tasks import Task

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
UIntArray = npt.NDArray[np.uint64]

MAX_CELLS = 64
_KINDS = (Kind.SCALAR, Kind.VECTOR, Kind.MATRIX)
_INIT = {LitInit.OPEN_PM1: INIT_OPEN_PM1, LitInit.PM1: INIT_PM1, LitInit.UNIT: INIT_UNIT,
         LitInit.INDEX: INIT_INDEX}
_MUT = {LitMutation.LOG_OR_FLIP: MUT_LOG_OR_FLIP, LitMutation.LOG: MUT_LOG,
        LitMutation.REDRAW_INDEX: MUT_REDRAW_INDEX}
# counters of a chunk: individuals, train steps, memo hits, memo misses, evaluations, stop
C_INDIVIDUALS, C_STEPS, C_MEMO_HITS, C_MEMO_MISSES, C_EVALUATIONS, C_STOP = range(6)
_REJECT_SALT = 0x9E3779B97F4A7C15


# ---- the op tables ---------------------------------------------------------------------------


@cache
def op_tables() -> dict[str, npt.NDArray[Any]]:
    """Facts of every op row as arrays (derived from ops.py and mutate.py, never written here)."""
    n = len(OPS)
    choices = [alter_choices(op) for op in OPS]
    t = {
        "out": np.full(n, -1, dtype=np.int64), "arity": np.zeros(n, dtype=np.int64),
        "ins": np.zeros((n, 2), dtype=np.int64), "nlit": np.zeros(n, dtype=np.int64),
        "init": np.zeros((n, 3), dtype=np.int64), "mut": np.zeros((n, 3), dtype=np.int64),
        "littype": np.zeros((n, 3), dtype=np.int64), "partial": np.zeros(n, dtype=np.bool_),
        "random": np.zeros(n, dtype=np.bool_), "cost": np.zeros(n, dtype=np.int64),
        "alter": np.zeros((n, max(map(len, choices))), dtype=np.int64),
        "nalter": np.array([len(c) for c in choices], dtype=np.int64),
    }
    for op in OPS:
        c = op.code
        t["out"][c] = _KINDS.index(op.out) if op.out is not None else -1
        t["arity"][c] = op.arity
        for i, kind in enumerate(op.ins):
            t["ins"][c, i] = _KINDS.index(kind)
        t["nlit"][c] = len(op.literals)
        for k, lit in enumerate(op.literals):
            t["init"][c, k] = _INIT[lit.init]
            t["mut"][c, k] = _MUT[lit.mutation]
            t["littype"][c, k] = 1 if lit.type is LitType.INDEX else 0
        t["partial"][c] = any(x.type is LitType.INDEX for x in op.literals) and op.out is not None
        t["random"][c] = op.is_random
        t["cost"][c] = op.cost
        t["alter"][c, : len(choices[c])] = choices[c]
    return t


# ---- programs as rows ------------------------------------------------------------------------


def _cell_code(cell: Cell | None) -> int:
    return -1 if cell is None else _KINDS.index(cell.kind) * KIND_SHIFT + cell.index


def encode(program: Program, rows: IntArray, lits: FloatArray, n: IntArray) -> None:
    """Write a program into rows (op, out, in0, in1), literals and component sizes."""
    r = 0
    for c, instrs in enumerate(program.components):
        n[c] = len(instrs)
        for instr in instrs:
            rows[r, 0] = instr.code
            rows[r, 1] = _cell_code(instr.out)
            rows[r, 2] = _cell_code(instr.ins[0]) if len(instr.ins) > 0 else -1
            rows[r, 3] = _cell_code(instr.ins[1]) if len(instr.ins) > 1 else -1
            lits[r, :] = 0.0
            for k, value in enumerate(instr.literals):
                lits[r, k] = float(value)
            r += 1


def decode(rows: IntArray, lits: FloatArray, n: IntArray) -> Program:
    """The Program of rows written by `encode` or the kernels."""
    parts: list[tuple[Instr, ...]] = []
    r = 0
    values = rows.tolist()
    floats = lits.tolist()
    for c in range(3):
        instrs = []
        for _ in range(int(n[c])):
            code, out, in0, in1 = values[r]
            op = OPS[code]
            cells = [Cell(_KINDS[x // KIND_SHIFT], x % KIND_SHIFT) for x in (in0, in1)[
                : op.arity]]
            literals: list[float | int] = [
                int(floats[r][k]) if lit.type is LitType.INDEX else floats[r][k]
                for k, lit in enumerate(op.literals)]
            instrs.append(Instr(code, Cell(_KINDS[out // KIND_SHIFT], out % KIND_SHIFT)
                                if out >= 0 else None, tuple(cells), tuple(literals)))
            r += 1
        parts.append(tuple(instrs))
    return Program(parts[0], parts[1], parts[2])


# ---- generator states ------------------------------------------------------------------------

_M64 = (1 << 64) - 1


def pcg_to_array(state: dict[str, Any]) -> UIntArray:
    """numpy PCG64 state dict -> (state high, state low, inc high, inc low)."""
    if state.get("bit_generator") != "PCG64" or state.get("has_uint32", 0):
        raise ValueError("the compiled search needs plain PCG64 generators")
    s, inc = int(state["state"]["state"]), int(state["state"]["inc"])
    return np.array([s >> 64, s & _M64, inc >> 64, inc & _M64], dtype=np.uint64)


def pcg_to_state(array: UIntArray) -> dict[str, Any]:
    hi, lo, ihi, ilo = (int(x) for x in array)
    return {"bit_generator": "PCG64", "state": {"state": (hi << 64) | lo, "inc": (ihi << 64) | ilo},
            "has_uint32": 0, "uinteger": 0}


# ---- the generated loop -----------------------------------------------------------------------

_LOOP = '''"""The azdsl compiled search loop for F = {dim}; generated by azdsl.searchfast.

Stamp {stamp}.
"""

import math
import sys

import numpy as np
from numba import njit

from azdsl.fec import _probe_hashes
from azdsl.searchkernel import (
    fec_insert, fec_lookup, hurdle_passes, memo_slot, mutate_into, pcg_fill, prune_lower,
    random_into,
)

evaluate_batch = sys.modules[{vm_module!r}].evaluate_batch

REJECT_SALT = np.uint64({reject_salt})


@njit(cache=True, error_model="numpy")
def combined(per_task, count, median, scratch):
    """combine_fitness of the first `count` tasks (azdsl.evaluate)."""
    if median:
        part = scratch[:count]
        part[:] = per_task[:count]
        part.sort()
        return part[count // 2]
    total = 0.0
    for k in range(count):
        total += per_task[k]
    return total / count


@njit(cache=True, error_model="numpy")
def score(cr, cl, cn, seed, g, t, mem_tables, lw, memo, fec, tasks, hurdle, counters):
    """Scorer.score for the child in cr/cl/cn (see azdsl.scorer)."""
    (t_out, t_arity, t_in, t_nlit, t_init, t_mut, t_littype, t_partial, t_random,
     t_cost, t_alter, t_nalter) = t
    (bit_base, keep, prediction, vm_base, vm_width, row_width, float_width) = mem_tables
    (flags, out_ints, out_floats, out_bounds, key, bounds2, layout2, mem_size,
     features) = lw
    (m_on, m_keys, m_used, m_probe, m_known, m_psteps, m_fit, m_steps, m_count) = memo
    (fec_on, f_keys, f_fit, f_served, f_prev, f_next, f_bnext, f_buckets, f_ints) = fec
    (p_x, p_y, p_xv, p_yv, p_perm, p_nt, p_nv, p_ep, cls, tidx, f_x, f_y, f_xv, f_yv,
     f_perm, f_nt, f_nv, f_ep, ep_mask, fit2, perr, nerr, cnt, seeds1, probe_seed,
     num_train, zeros, max_abs_error, median, budget_on, limits, per_task, missing,
     real_sorted) = tasks
    (h_on, h_tasks, h_percentile, h_warmup, h_order, h_sorted, h_ints) = hurdle
    n_tasks = per_task.shape[0]
    rejected = False
    if budget_on:
        s_cost = 0
        p_cost = 0
        l_cost = 0
        r = 0
        for c in range(3):
            for _ in range(cn[c]):
                if c == 0:
                    s_cost += t_cost[cr[r, 0]]
                elif c == 1:
                    p_cost += t_cost[cr[r, 0]]
                else:
                    l_cost += t_cost[cr[r, 0]]
                r += 1
        for k in range(n_tasks):
            if s_cost + num_train[k] * (p_cost + l_cost) > limits[k]:
                rejected = True
    random = prune_lower(cr, cl, cn, flags, t_partial, t_random, t_nlit, t_littype,
                         bit_base, keep, prediction, vm_base, vm_width, row_width,
                         float_width, out_ints, out_floats, out_bounds, key)
    if rejected:
        key[1] = key[1] ^ REJECT_SALT
    if not m_on:  # the memo is off: one scratch slot, wiped for every child
        slot = 0
        m_known[0] = False
        m_fit[0, :] = np.nan
    else:
        slot = memo_slot(key, m_keys, m_used)
        if slot < 0:
            counters[3] += 1
            if m_count[0] * 10 >= m_keys.shape[0] * 7:
                m_used[:] = False
                m_count[0] = 0
                slot = memo_slot(key, m_keys, m_used)
            slot = -1 - slot
            m_used[slot] = True
            m_keys[slot, 0] = key[0]
            m_keys[slot, 1] = key[1]
            m_known[slot] = False
            m_fit[slot, :] = np.nan
            m_count[0] += 1
        else:
            counters[2] += 1
    n_live = out_bounds[3]
    bounds2[0, 0] = out_bounds[0]
    bounds2[0, 1] = out_bounds[1]
    bounds2[0, 2] = out_bounds[2]
    bounds2[0, 3] = out_bounds[3]
    layout2[0, 0] = mem_size
    layout2[0, 1] = features
    ints = out_ints[: n_live * row_width]
    floats = out_floats[: n_live * float_width]
    for k in range(n_tasks):
        per_task[k] = 0.0
    if fec_on:
        if not m_known[slot]:
            evaluate_batch(ints, floats, bounds2, layout2, probe_seed, p_x, p_y, p_xv, p_yv,
                           p_perm, p_nt, p_nv, p_ep, cls, tidx, max_abs_error, fit2, perr, cnt)
            hashes = np.zeros(n_tasks, dtype=np.uint64)
            _probe_hashes(perr[0], cnt[0, :, 0], cnt[0, :, 1], tidx,
                          zeros if rejected else num_train, hashes)
            steps = 0
            for k in range(n_tasks):
                m_probe[slot, k] = hashes[k]
                steps += cnt[0, k, 2]
            m_psteps[slot] = steps
            m_known[slot] = True
        counters[1] += m_psteps[slot]
    # Scorer._resolve on tasks lo..hi-1: from the FEC cache where it hits, else from the memo
    # or evaluated (and then inserted). With hurdles (azdsl.hurdles) twice: the first tasks,
    # then the rest only if the child passes; a stopped child's other tasks count as 0.
    lo = 0
    hi = h_tasks if h_on else n_tasks
    while True:
        n_missing = 0
        for k in range(lo, hi):
            if fec_on:
                value = fec_lookup(m_probe[slot, k], f_keys, f_fit, f_served, f_prev, f_next,
                                   f_bnext, f_buckets, f_ints)
                if value == value:
                    per_task[k] = value
                    continue
            missing[n_missing] = k
            n_missing += 1
        if n_missing > 0 and not rejected:
            known = not random
            if known:
                for j in range(n_missing):
                    if m_fit[slot, missing[j]] != m_fit[slot, missing[j]]:
                        known = False
                        break
            if known:
                for j in range(n_missing):
                    k = missing[j]
                    per_task[k] = m_fit[slot, k]
                    counters[1] += m_steps[slot, k]
            else:
                counters[4] += 1
                seeds1[0] = seed
                if n_missing == n_tasks:
                    full_epochs = f_ep
                else:
                    ep_mask[:] = 0
                    for j in range(n_missing):
                        ep_mask[missing[j]] = f_ep[missing[j]]
                    full_epochs = ep_mask
                evaluate_batch(ints, floats, bounds2, layout2, seeds1, f_x, f_y, f_xv, f_yv,
                               f_perm, f_nt, f_nv, full_epochs, cls, tidx, max_abs_error, fit2,
                               nerr, cnt)
                for j in range(n_missing):
                    k = missing[j]
                    per_task[k] = fit2[0, k]
                    counters[1] += cnt[0, k, 2]
                    if not random:
                        m_fit[slot, k] = fit2[0, k]
                        m_steps[slot, k] = cnt[0, k, 2]
        if fec_on:
            for j in range(n_missing):
                k = missing[j]
                fec_insert(m_probe[slot, k], per_task[k], 0, f_keys, f_fit, f_served, f_prev,
                           f_next, f_bnext, f_buckets, f_ints)
        if hi == n_tasks or not hurdle_passes(combined(per_task, hi, median, real_sorted),
                                              h_percentile, h_warmup, h_order, h_sorted,
                                              h_ints):
            return combined(per_task, n_tasks, median, real_sorted)
        lo = hi
        hi = n_tasks


@njit(cache=True, error_model="numpy")
def run_chunk(limit, counters, budget, random_search, pop, ring, tour, mut, child, best, g, t,
              mem_tables, lw, memo, fec, tasks, hurdle):
    """Up to `limit` children of regularized evolution (or of random search: fresh random
    programs); counters[5] says why it stopped (0 limit, 1 train steps, 2 individuals)."""
    max_steps, max_individuals, eval_base = budget
    pop_rows, pop_lits, pop_n, pop_fit = pop
    t_st, t_buf, t_pos, t_start, t_size = tour
    m_st, m_buf, m_pos = mut
    cr, cl, cn = child
    b_rows, b_lits, b_n, b_fit = best
    (mem, allowed, n_allowed, mutable, handlers, mins, maxs, dim, mutate_prob,
     init_sizes) = g
    (t_out, t_arity, t_in, t_nlit, t_init, t_mut, t_littype, t_partial, t_random,
     t_cost, t_alter, t_nalter) = t
    size = pop_fit.shape[0]
    counters[5] = 0
    for _ in range(limit):
        if max_steps > 0 and counters[1] >= max_steps:
            counters[5] = 1
            return
        if max_individuals > 0 and counters[0] >= max_individuals:
            counters[5] = 2
            return
        if random_search:
            random_into(cr, cl, cn, m_st, m_buf, m_pos, t_out, t_arity, t_in, t_nlit, t_init,
                        mem, allowed, n_allowed, init_sizes, dim)
        else:
            parent = 0
            parent_fit = 0.0
            for k in range(t_size):
                if t_pos[0] == t_pos[1]:
                    t_start[:] = t_st
                    pcg_fill(t_st, t_buf)
                    t_pos[1] = t_buf.shape[0]
                    t_pos[0] = 0
                u = t_buf[t_pos[0]]
                t_pos[0] += 1
                slot = int(u * size)
                if k == 0 or pop_fit[slot] > parent_fit:
                    parent = slot
                    parent_fit = pop_fit[slot]
            total = pop_n[parent, 0] + pop_n[parent, 1] + pop_n[parent, 2]
            cr[:total] = pop_rows[parent, :total]
            cl[:total] = pop_lits[parent, :total]
            cn[:] = pop_n[parent]
            mutate_into(cr, cl, cn, m_st, m_buf, m_pos, t_out, t_arity, t_in, t_nlit, t_init,
                        t_mut, t_alter, t_nalter, mem, allowed, n_allowed, mutable, handlers,
                        mins, maxs, dim, mutate_prob)
        seed = np.uint64(eval_base) + np.uint64(counters[0])
        value = score(cr, cl, cn, seed, g, t, mem_tables, lw, memo, fec, tasks, hurdle,
                      counters)
        slot = ring[0]
        total = cn[0] + cn[1] + cn[2]
        pop_rows[slot, :total] = cr[:total]
        pop_lits[slot, :total] = cl[:total]
        pop_n[slot] = cn
        pop_fit[slot] = value
        ring[0] = (slot + 1) % size
        counters[0] += 1
        if value > b_fit[0]:
            b_fit[0] = value
            b_rows[:total] = cr[:total]
            b_lits[:total] = cl[:total]
            b_n[:] = cn
'''


def _stamp() -> str:
    digest = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in ("searchkernel.py", "fec.py", "searchfast.py"):
        digest.update((here / name).read_bytes())
    return digest.hexdigest()[:16]


@cache
def loop_module(dim: int) -> ModuleType:
    """The compiled loop for F = `dim` (generated once per machine, VM version and F)."""
    from azdsl import vm
    from azdsl.codegen import content_stem, load_module

    vm_mod = vm.vm_module(dim)
    source = _LOOP.format(dim=dim, stamp=_stamp(), vm_module=vm_mod.__name__,
                          reject_salt=_REJECT_SALT)
    return load_module(content_stem(f"azdsl_search_F{dim}", source), source)


# ---- the hurdle window as arrays --------------------------------------------------------------


def hurdle_arrays(hurdle: Hurdle | None) -> tuple[Any, ...]:
    """What the loop's kernel (searchkernel.hurdle_passes) holds of a hurdle: (on, tasks,
    percentile, warmup, the window as a ring, the window sorted, ints indexed by H_*)."""
    if hurdle is None:
        return (False, 0, 0.0, 0, np.zeros(1), np.zeros(1), np.zeros(4, dtype=np.int64))
    values = hurdle.state()["values"]
    order = np.zeros(hurdle.window)
    order[: len(values)] = values
    ordered = np.zeros(hurdle.window)
    ordered[: len(values)] = sorted(values)
    ints = np.zeros(4, dtype=np.int64)
    ints[H_COUNT] = len(values)
    ints[H_RECORDED] = hurdle.recorded
    ints[H_STOPPED] = hurdle.stopped
    return (True, hurdle.tasks, float(hurdle.percentile), hurdle.warmup, order, ordered, ints)


def export_hurdle(arrays: tuple[Any, ...], hurdle: Hurdle) -> None:
    """Write the window and counters of `hurdle_arrays` back into `hurdle`."""
    order, ints = arrays[4], arrays[6]
    count, head = int(ints[H_COUNT]), int(ints[H_HEAD])
    values = [float(order[(head + i) % order.shape[0]]) for i in range(count)]
    hurdle.assign(Hurdle.from_state({**hurdle.state(), "values": values,
                                     "recorded": int(ints[H_RECORDED]),
                                     "stopped": int(ints[H_STOPPED])}))


# ---- one experiment's state as arrays -------------------------------------------------------


def supported(backend: str, sizes: tuple[int, int, int]) -> bool:
    """Whether the compiled loop can run this search (else the Python loop runs it)."""
    return backend == "vm" and sum(sizes) <= MAX_CELLS


class FastLoop:
    """One experiment's population, generators and caches as arrays, and the loop on them."""

    def __init__(self, mcfg: MutationConfig, sizes: tuple[int, int, int], tasks: list[Task],
                 probe: tuple[int, int], max_abs_error: float, combine: str,
                 fec: FecCache | None, memo_size: int, budget_limits: list[float] | None,
                 capacity: int, random_search: bool, hurdle: Hurdle | None) -> None:
        from azdsl import vm
        from azdsl.evaluate import Settings

        self.dim = tasks[0].dim
        self.sizes = sizes
        self.module = loop_module(self.dim)
        t = op_tables()
        self.t = (t["out"], t["arity"], t["ins"], t["nlit"], t["init"], t["mut"],
                  t["littype"], t["partial"], t["random"], t["cost"], t["alter"], t["nalter"])
        ops = mcfg.ops
        width = max(1, *(len(o) for o in ops))
        allowed = np.zeros((3, width), dtype=np.int64)
        for c, codes in enumerate(ops):
            allowed[c, : len(codes)] = codes
        self.g = (
            np.array([mcfg.scalars, mcfg.vectors, mcfg.matrices], dtype=np.int64), allowed,
            np.array([len(o) for o in ops], dtype=np.int64),
            np.array([c for c in range(3) if ops[c]], dtype=np.int64),
            np.array([MUTATION_TYPES.index(m) for m in mcfg.mutation_types], dtype=np.int64),
            np.array(mcfg.min_sizes, dtype=np.int64), np.array(mcfg.max_sizes, dtype=np.int64),
            mcfg.dim, float(mcfg.mutate_prob), np.array(mcfg.init_sizes, dtype=np.int64))
        self.random_search = random_search
        self.capacity = capacity  # rows per program
        ns, nv, _ = sizes
        dim = self.dim
        bit_base = np.array([0, ns, ns + nv], dtype=np.int64)
        keep = np.uint64(~((1 << 0) | (1 << ns)) & _M64)
        self.mem_tables = (bit_base, keep, np.uint64(1 << 1),
                           np.array([0, ns, ns + nv * dim], dtype=np.int64),
                           np.array([1, dim, dim * dim], dtype=np.int64), vm.ROW, vm.FLOAT_ROW)
        mem_size = sizes[0] + sizes[1] * dim + sizes[2] * dim * dim
        self.lw = (np.zeros(capacity + 1, dtype=np.int64),
                   np.zeros((capacity + 1) * vm.ROW, dtype=np.int64),
                   np.zeros((capacity + 1) * vm.FLOAT_ROW), np.zeros(4, dtype=np.int64),
                   np.zeros(2, dtype=np.uint64), np.zeros((1, 4), dtype=np.int64),
                   np.zeros((1, 2), dtype=np.int64), mem_size, ns)
        n = len(tasks)
        slots = 1  # structural_cache_size = 0: the memo is off, score() uses one scratch slot
        if memo_size > 0:
            slots = 1 << max(4, math.ceil(math.log2(max(16, min(memo_size, 2**24 // max(1, n))
                                                        / 0.7))))
        self.memo = (memo_size > 0,
                     np.zeros((slots, 2), dtype=np.uint64), np.zeros(slots, dtype=np.bool_),
                     np.zeros((slots, n), dtype=np.uint64), np.zeros(slots, dtype=np.bool_),
                     np.zeros(slots, dtype=np.int64), np.full((slots, n), np.nan),
                     np.zeros((slots, n), dtype=np.int64), np.zeros(1, dtype=np.int64))
        self.fec_cache = fec
        self.fec = self._fec_arrays(fec)
        self.hurdle_object = hurdle
        self.hurdle = hurdle_arrays(hurdle)
        full = vm.PackedTasks.pack(tasks, Settings())
        probe_tasks = vm.PackedTasks.pack(
            tasks, Settings(num_train=probe[0], num_valid=probe[1], epochs=1))
        num_train = np.array([len(task.y_train) for task in tasks], dtype=np.int64)
        limits = np.array(budget_limits if budget_limits is not None else [0.0] * n)
        self.tasks = (
            probe_tasks.x_train, probe_tasks.y_train, probe_tasks.x_valid, probe_tasks.y_valid,
            probe_tasks.perm, probe_tasks.n_train, probe_tasks.n_valid, probe_tasks.epochs,
            full.classification, full.task_index, full.x_train, full.y_train, full.x_valid,
            full.y_valid, full.perm, full.n_train, full.n_valid, full.epochs,
            np.zeros(n, dtype=np.int64), np.zeros((1, n)),
            np.zeros((1, n, probe[0] + probe[1])), np.zeros((1, n, 0)),
            np.zeros((1, n, 3), dtype=np.int64), np.zeros(1, dtype=np.uint64),
            np.array([PROBE_SEED], dtype=np.uint64), num_train, np.zeros(n, dtype=np.int64),
            float(max_abs_error), combine == "median", budget_limits is not None, limits,
            np.zeros(n), np.zeros(n, dtype=np.int64), np.zeros(n))
        self.counters = np.zeros(6, dtype=np.int64)
        self.child = (np.zeros((capacity + 1, 4), dtype=np.int64),
                      np.zeros((capacity + 1, 3)), np.zeros(3, dtype=np.int64))
        self.best = (np.zeros((capacity + 1, 4), dtype=np.int64),
                     np.zeros((capacity + 1, 3)), np.zeros(3, dtype=np.int64), np.zeros(1))
        self.mut_buf = (np.zeros(16), np.zeros(2, dtype=np.int64))

    def _fec_arrays(self, fec: FecCache | None) -> tuple[Any, ...]:
        size = fec.cache_size if fec is not None else 1
        cap = size + 1
        buckets = 1 << max(4, math.ceil(math.log2(2 * cap)))
        ints = np.zeros(8, dtype=np.int64)
        ints[F_HEAD] = ints[F_TAIL] = -1
        ints[F_FREE] = 0
        ints[F_CAP] = size
        ints[F_FORGET] = fec.max_hits if fec is not None else 0
        arrays = (fec is not None, np.zeros(cap, dtype=np.uint64), np.zeros(cap),
                  np.zeros(cap, dtype=np.int64), np.full(cap, -1, dtype=np.int64),
                  np.append(np.arange(1, cap, dtype=np.int64), -1),
                  np.full(cap, -1, dtype=np.int64), np.full(buckets, -1, dtype=np.int64), ints)
        if fec is not None:
            state = fec.state()
            _, keys, fit, served, prev, nxt, bnext, bucket_arr, fints = arrays
            for key, value, count in zip(state["keys"], state["fitness"], state["served"],
                                         strict=True):
                fec_insert(np.uint64(key), float(value), int(count), keys, fit, served, prev,
                           nxt, bnext, bucket_arr, fints)
            fints[F_HITS] = fec.hits
            fints[F_MISSES] = fec.misses
        return arrays

    # ---- population and generators in and out -------------------------------------------------

    def load(self, pop: Population, tournament: Uniforms, mutation_rng: np.random.Generator,
             best: Program | None, best_fitness: float) -> None:
        size = pop.capacity
        self.pop = (np.zeros((size, self.capacity + 1, 4), dtype=np.int64),
                    np.zeros((size, self.capacity + 1, 3)), np.zeros((size, 3), dtype=np.int64),
                    np.array(pop.fitness, dtype=np.float64))
        encoded: dict[int, int] = {}
        for slot, program in enumerate(pop.programs):
            first = encoded.setdefault(id(program), slot)
            if first != slot:
                self.pop[0][slot] = self.pop[0][first]
                self.pop[1][slot] = self.pop[1][first]
                self.pop[2][slot] = self.pop[2][first]
            else:
                encode(program, self.pop[0][slot], self.pop[1][slot], self.pop[2][slot])
        self.ring = np.array([pop.next_slot], dtype=np.int64)
        buf, pos, start, block = tournament.raw()
        t_buf = np.zeros(block)
        t_buf[: len(buf)] = buf
        self.tour = (pcg_to_array(dict(tournament.generator_state())), t_buf,
                     np.array([pos, len(buf)], dtype=np.int64), pcg_to_array(start),
                     0)
        self.mutation_rng = mutation_rng
        self.mut_state = pcg_to_array(dict(mutation_rng.bit_generator.state))
        if best is not None:
            encode(best, self.best[0], self.best[1], self.best[2])
        self.best[3][0] = best_fitness

    def run(self, limit: int, tournament_size: int, max_steps: int, max_individuals: int,
            eval_base: int, individuals: int, train_steps: int) -> tuple[int, int, int]:
        """Run up to `limit` children; returns (children run, train steps of them, stop
        reason: 0 limit, 1 train steps, 2 individuals)."""
        c = self.counters
        c[0] = individuals
        c[1] = train_steps
        tour = (self.tour[0], self.tour[1], self.tour[2], self.tour[3], tournament_size)
        self.module.run_chunk(
            limit, c, (max_steps, max_individuals, np.uint64(eval_base & azrng.MASK)),
            self.random_search, self.pop, self.ring, tour, (self.mut_state, *self.mut_buf),
            self.child, self.best, self.g, self.t, self.mem_tables, self.lw, self.memo, self.fec,
            self.tasks, self.hurdle)
        return int(c[0]) - individuals, int(c[1]) - train_steps, int(c[5])

    def export(self, pop: Population, tournament: Uniforms,
               mutation_rng: np.random.Generator) -> tuple[Program, float]:
        """Write the arrays back into the Python objects; returns the best program so far."""
        rows, lits, n, fit = self.pop
        cache_: dict[bytes, Program] = {}
        programs = []
        for slot in range(fit.shape[0]):
            total = int(n[slot].sum())
            raw = rows[slot, :total].tobytes() + lits[slot, :total].tobytes() + n[slot].tobytes()
            program = cache_.get(raw)
            if program is None:
                program = cache_[raw] = decode(rows[slot], lits[slot], n[slot])
            programs.append(program)
        pop.programs[:] = programs
        pop.fitness[:] = fit.tolist()
        pop.next_slot = int(self.ring[0])
        t_st, t_buf, t_pos, t_start, _ = self.tour
        tournament.restore_raw(t_buf[: int(t_pos[1])].tolist(), int(t_pos[0]),
                               pcg_to_state(t_start), pcg_to_state(t_st))
        mutation_rng.bit_generator.state = pcg_to_state(self.mut_state)
        if self.fec_cache is not None:
            self._export_fec(self.fec_cache)
        if self.hurdle_object is not None:
            export_hurdle(self.hurdle, self.hurdle_object)
        return decode(self.best[0], self.best[1], self.best[2]), float(self.best[3][0])

    def _export_fec(self, fec: FecCache) -> None:
        _, keys, fit, served, _prev, nxt, _bnext, _buckets, ints = self.fec
        size = int(ints[0])
        out_keys = np.zeros(size, dtype=np.uint64)
        out_fit = np.zeros(size)
        out_served = np.zeros(size, dtype=np.int64)
        fec_export(keys, fit, served, nxt, ints, out_keys, out_fit, out_served)
        fresh = FecCache.from_state({
            "cache_size": fec.cache_size, "forget_every": fec.forget_every,
            "hits": int(ints[F_HITS]), "misses": int(ints[F_MISSES]),
            "keys": [int(k) for k in out_keys.tolist()], "fitness": out_fit.tolist(),
            "served": out_served.tolist()})
        fec.assign(fresh)

    def report(self, pop: Population, ex: Any, scorer: Any) -> None:
        """What a progress report reads: fitness values, the best so far, counters."""
        pop.fitness[:] = self.pop[3].tolist()
        if self.best[3][0] > ex.best_fitness:
            ex.best_program = decode(self.best[0], self.best[1], self.best[2])
            ex.best_fitness = float(self.best[3][0])
        if self.fec_cache is not None:
            self.fec_cache.hits, self.fec_cache.misses = self.fec_counts()
        scorer.memo.hits = self.memo_hits()
        if self.hurdle_object is not None:
            self.hurdle_object.stopped = int(self.hurdle[-1][H_STOPPED])

    def fec_counts(self) -> tuple[int, int]:
        ints = self.fec[-1]
        return int(ints[F_HITS]), int(ints[F_MISSES])

    def memo_hits(self) -> int:
        return int(self.counters[2])
