"""The search's per-child loop: tournament, mutation, scoring and replacement, compiled by Numba.

`run_chunk` runs up to a given number of children of one experiment on its arrays
(azdsl.search.engine holds them): the initial programs while the population fills, then regularized
evolution's tournament and mutation, or random search's fresh programs; `score` prunes and
lowers each child, asks the structural memo and the FEC cache, applies the train budget and
the hurdles, and evaluates what remains on the VM; the child replaces the oldest member and
enters the lineage table. The steps themselves are azdsl.search.kernel's.

The VM is generated per F (azdsl.running.vm), and Numba binds a called function at compile time, so
azdsl.search.engine loads a copy of this file per F, with `evaluate_batch` bound to that F's VM
before the first call (its name carries the VM's, so Numba's cache of the copy is never
stale). The module itself is the one definition, and runs as plain Python too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from azdsl.running.kernels import combine_first, stream
from azdsl.search.fec import probe_hashes_into
from azdsl.search.kernel import (
    INITIAL,
    RANDOM,
    draw,
    fec_insert,
    fec_lookup,
    hurdle_passes,
    keep_fixed_into,
    memo_slot,
    mutate_into,
    node_add,
    prune_lower,
    random_into,
)

# The VM's evaluate_batch for this copy's F (azdsl.running.vm); bound by azdsl.search.engine.
evaluate_batch: Any = None

_REJECT_SALT = np.uint64(0x9E3779B97F4A7C15)  # changes the memo key of a rejected child
# counters of a chunk: individuals, train steps, memo hits, memo misses, evaluations, stop
C_INDIVIDUALS, C_STEPS, C_MEMO_HITS, C_MEMO_MISSES, C_EVALUATIONS, C_STOP = range(6)
# why a chunk stopped: its limit, the train steps, the individuals, no room in the lineage
STOP_LIMIT, STOP_STEPS, STOP_INDIVIDUALS, STOP_ROOM = range(4)
INIT_RANDOM, INIT_PROGRAM = range(2)  # initial programs: drawn at random, or one given


@njit(cache=True, error_model="numpy")
def score(cr: Any, cl: Any, cn: Any, seed: Any, g: Any, t: Any, mem_tables: Any, lw: Any,
          memo: Any, fec: Any, tasks: Any, hurdle: Any, counters: Any) -> float:
    """The fitness of the child in cr/cl/cn on the search tasks, evaluated with `seed`.

    The train budget (a program costlier than the budget trains on no example), pruning and
    lowering, the structural memo, the FEC probe and lookups, the evaluation of the tasks
    nothing answered (with hurdles: the first tasks, then the rest only if the child passes),
    and the combination of the per-task fitness. Counters: train steps, memo hits and misses,
    evaluations."""
    t_nlit, t_littype, t_partial, t_random, t_cost = t[3], t[6], t[7], t[8], t[9]
    (cell_base, vm_base, vm_width, row_width, float_width) = mem_tables
    (flags, live, canon, out_ints, out_floats, out_bounds, key, bounds2, layout2, mem_size,
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
    random = prune_lower(cr, cl, cn, flags, live, canon, t_partial, t_random, t_nlit, t_littype,
                         cell_base, vm_base, vm_width, row_width, float_width, out_ints,
                         out_floats, out_bounds, key)
    if rejected:
        key[1] = key[1] ^ _REJECT_SALT
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
            probe_hashes_into(perr[0], cnt[0, :, 0], cnt[0, :, 1], tidx,
                          zeros if rejected else num_train, hashes)
            steps = 0
            for k in range(n_tasks):
                m_probe[slot, k] = hashes[k]
                steps += cnt[0, k, 2]
            m_psteps[slot] = steps
            m_known[slot] = True
        counters[1] += m_psteps[slot]
    # Tasks lo..hi-1: from the FEC cache where it hits, else from the memo or evaluated (and
    # then inserted). With hurdles (kernel.hurdle_passes) twice: the first tasks, then
    # the rest only if the child passes; a stopped child's other tasks count as 0.
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
        if hi == n_tasks or not hurdle_passes(combine_first(per_task, hi, median, real_sorted),
                                              h_percentile, h_warmup, h_order, h_sorted,
                                              h_ints):
            return combine_first(per_task, n_tasks, median, real_sorted)
        lo = hi
        hi = n_tasks


@njit(cache=True, error_model="numpy")
def run_chunk(limit: int, counters: Any, budget: Any, random_search: bool, keys: Any,
              init: Any, pop: Any, child: Any, best: Any, lineage: Any, tournament_size: int,
              g: Any, t: Any, mem_tables: Any, lw: Any, memo: Any, fec: Any, tasks: Any,
              hurdle: Any) -> None:
    """Up to `limit` children; counters[C_STOP] says why it stopped (STOP_*)."""
    max_steps, max_individuals, eval_base = budget
    init_base, tournament_base, mutation_base, id_base = keys
    init_kind, i_rows, i_lits, i_n = init
    pop_rows, pop_lits, pop_n, pop_fit, pop_node, fill = pop
    cr, cl, cn, d, rec = child
    b_rows, b_lits, b_n, b_fit, b_node = best
    n_ints, n_keys, n_fit, n_count, bests, b_count = lineage
    (mem, allowed, n_allowed, mutable, handlers, mins, maxs, dim, mutate_prob,
     init_sizes) = g
    t_out, t_arity, t_in, t_nlit, t_init, t_mut = t[0], t[1], t[2], t[3], t[4], t[5]
    t_alter, t_nalter = t[10], t[11]
    size = pop_fit.shape[0]
    counters[C_STOP] = STOP_LIMIT
    for _ in range(limit):
        if max_steps > 0 and counters[C_STEPS] >= max_steps:
            counters[C_STOP] = STOP_STEPS
            return
        if max_individuals > 0 and counters[C_INDIVIDUALS] >= max_individuals:
            counters[C_STOP] = STOP_INDIVIDUALS
            return
        if n_count[0] >= n_ints.shape[0] or b_count[0] >= bests.shape[0]:
            counters[C_STOP] = STOP_ROOM
            return
        k = counters[C_INDIVIDUALS]
        parent_node = -1
        d[1] = 0
        if fill[0] < size:  # the population fills with initial programs
            rec[0] = INITIAL
            rec[1] = -1
            rec[2] = -1
            if init_kind == INIT_RANDOM:
                d[0] = stream(init_base, k)
                random_into(cr, cl, cn, d, t_out, t_arity, t_in, t_nlit, t_init, mem, allowed,
                            n_allowed, init_sizes, dim)
            else:
                d[0] = 0
                total = i_n[0] + i_n[1] + i_n[2]
                cr[:total] = i_rows[:total]
                cl[:total] = i_lits[:total]
                cn[:] = i_n
        elif random_search:
            rec[0] = RANDOM
            rec[1] = -1
            rec[2] = -1
            d[0] = stream(mutation_base, k)
            random_into(cr, cl, cn, d, t_out, t_arity, t_in, t_nlit, t_init, mem, allowed,
                        n_allowed, init_sizes, dim)
            if init_kind == INIT_PROGRAM:
                keep_fixed_into(cr, cl, cn, n_allowed, i_rows, i_lits, i_n)
        else:
            # The tournament: slots uniform with replacement, the fittest wins (the first
            # drawn on ties).
            d[0] = stream(tournament_base, k)
            parent = 0
            parent_fit = 0.0
            for j in range(tournament_size):
                slot = int(draw(d) * size)
                if j == 0 or pop_fit[slot] > parent_fit:
                    parent = slot
                    parent_fit = pop_fit[slot]
            total = pop_n[parent, 0] + pop_n[parent, 1] + pop_n[parent, 2]
            cr[:total] = pop_rows[parent, :total]
            cl[:total] = pop_lits[parent, :total]
            cn[:] = pop_n[parent]
            parent_node = pop_node[parent]
            d[0] = stream(mutation_base, k)
            d[1] = 0
            mutate_into(cr, cl, cn, d, rec, t_out, t_arity, t_in, t_nlit, t_init, t_mut,
                        t_alter, t_nalter, mem, allowed, n_allowed, mutable, handlers, mins,
                        maxs, dim, mutate_prob)
        seed = np.uint64(eval_base) + np.uint64(k)
        value = score(cr, cl, cn, seed, g, t, mem_tables, lw, memo, fec, tasks, hurdle,
                      counters)
        if fill[0] < size:
            slot = fill[0]
            fill[0] += 1
        else:
            slot = fill[1]
            fill[1] = (slot + 1) % size
        total = cn[0] + cn[1] + cn[2]
        pop_rows[slot, :total] = cr[:total]
        pop_lits[slot, :total] = cl[:total]
        pop_n[slot] = cn
        pop_fit[slot] = value
        node = node_add(n_ints, n_keys, n_fit, n_count, id_base + k, parent_node, rec, k, d[0],
                        value)
        pop_node[slot] = node
        counters[C_INDIVIDUALS] += 1
        if value > b_fit[0]:
            b_fit[0] = value
            b_rows[:total] = cr[:total]
            b_lits[:total] = cl[:total]
            b_n[:] = cn
            b_node[0] = node
            bests[b_count[0]] = node
            b_count[0] += 1
