"""VM throughput on the demo workload, and cold/warm start of `azdsl run`, as a small table.

Workload (BENCHMARKS.md): 10 linear tasks, F = 4, 100 training + 100 validation examples,
FEC off. Programs: the SGD linear regressor and random demo-space programs (Setup 10,
Predict 2, Learn 8), both as drawn (what the C++ original runs) and pruned of dead code (what
the search runs). Times are CPU seconds per individual (all 10 tasks), the best of several
repeats (the machines are shared and noisy). Run: `python benchmarks/bench_vm.py [--quick]`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from azdsl.language.liveness import live_mask
from azdsl.language.parse import parse_file
from azdsl.language.program import Program
from azdsl.running import vm
from azdsl.running.evaluate import Settings
from azdsl.running.evaluate import memory_sizes as evaluate_memory
from azdsl.running.tasks import TaskSpec, make_tasks
from azdsl.search.mutate import DEMO_OPS, MutationConfig, random_program

ROOT = Path(__file__).resolve().parent.parent
SGD_FILE = ROOT / "examples" / "linear_sgd.az"
ORIGINAL_US = 48.0  # C++ original, demo search with FEC off (BENCHMARKS.md)


def best_times(steps: Sequence[Callable[[], int]], repeats: int, seconds: float) -> list[float]:
    """Best CPU seconds per unit of work of each step, over `repeats` rounds in which every
    step runs for about `seconds` (interleaved, so a busy spell hits all of them alike)."""
    best = [float("inf")] * len(steps)
    for _ in range(repeats):
        for i, step in enumerate(steps):
            units = 0
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            while time.perf_counter() - start_wall < seconds:
                units += step()
            best[i] = min(best[i], (time.process_time() - start_cpu) / units)
    return best


def evaluation_step(programs: Sequence[Program], batch: int, all_live: bool,
                    codes: Sequence[int] | None) -> Callable[[], int]:
    """Lower, then run every task, `batch` programs per call (on the VM specialised to
    `codes` when given); returns how many individuals it evaluated."""
    tasks = make_tasks(TaskSpec(kind="linear", dim=4, num_tasks=10, num_train=100, num_valid=100))
    runner = vm.Batch(vm.PackedTasks.pack(tasks, Settings()), size=batch, codes=codes)
    sizes = memory(programs)
    groups = [list(programs[i:i + batch]) for i in range(0, len(programs), batch)]
    runner.run([vm.lower(programs[0], sizes, 4)], [1])  # compile or load the VM
    position = 0

    def step() -> int:
        nonlocal position
        group = groups[position % len(groups)]
        position += 1
        runner.run([vm.lower(p, sizes, 4, all_live=all_live) for p in group], [1] * len(group))
        return len(group)

    return step


def memory(programs: Sequence[Program]) -> tuple[int, int, int]:
    """The demo's memory (4 scalars, 3 vectors, 1 matrix), or more if a program needs it."""
    needs = [evaluate_memory(p, (4, 3, 1)) for p in programs]
    return (max(n[0] for n in needs), max(n[1] for n in needs), max(n[2] for n in needs))


def lowering_step(programs: Sequence[Program]) -> Callable[[], int]:
    def step() -> int:
        for p in programs:
            vm.lower(p, (4, 3, 1), 4, all_live=True)
        return len(programs)

    return step


def start_times() -> tuple[float, float]:
    """Wall seconds of `azdsl run examples/linear_sgd.az --backend vm`: in fresh caches
    (everything compiles), then again (everything loads from the caches)."""
    with tempfile.TemporaryDirectory() as folder:
        env = dict(os.environ, AZDSL_CACHE_DIR=f"{folder}/azdsl", NUMBA_CACHE_DIR=f"{folder}/nb")
        command = [sys.executable, "-m", "azdsl", "run", str(SGD_FILE), "--backend", "vm"]
        times = []
        for _ in range(2):
            start = time.perf_counter()
            subprocess.run(command, env=env, check=True, capture_output=True)
            times.append(time.perf_counter() - start)
    return times[0], times[1]


def _live_code(program: Program) -> Program:
    """The program without its dead instructions (cells keep their names)."""
    mask = live_mask(program)
    return Program(*(tuple(i for i, live in zip(c, m, strict=True) if live)
                     for c, m in zip(program.components, mask, strict=True)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs, no cold start")
    parser.add_argument("--programs", type=int, default=200, help="random programs drawn")
    args = parser.parse_args(argv)
    repeats, seconds = (3, 0.1) if args.quick else (15, 0.2)

    sgd = parse_file(SGD_FILE)
    rng = np.random.default_rng(0)
    config = MutationConfig()
    drawn = [random_program(rng, config) for _ in range(args.programs)]
    pruned = [_live_code(p) for p in drawn]
    live = np.mean([len(p.instructions()) for p in pruned])

    demo = DEMO_OPS
    rows = [
        ("SGD linear regression (5 instrs)", [sgd], 1, True, None),
        ("  same, VM specialised to the demo ops", [sgd], 1, True, demo),
        ("random demo programs, as drawn (20 instrs)", drawn, 1, False, None),
        (f"random demo programs, pruned ({live:.1f} instrs)", pruned, 1, True, None),
        ("  same, VM specialised to the demo ops", pruned, 1, True, demo),
        ("  same, 32 programs per call", pruned, 32, True, demo),
    ]
    print(f"VM on the demo workload (10 linear tasks, F = 4, 100 + 100 examples); "
          f"C++ original: ~{ORIGINAL_US:.0f} us per individual")
    print(f"{'programs':<48} {'us/individual':>14} {'vs original':>12}")
    steps = [evaluation_step(programs, batch, all_live, codes)
             for _, programs, batch, all_live, codes in rows]
    times = best_times([*steps, lowering_step(pruned)], repeats, seconds)
    for (name, *_), seconds_each in zip(rows, times, strict=False):
        us = seconds_each * 1e6
        print(f"{name:<48} {us:>14.1f} {ORIGINAL_US / us:>11.2f}x")
    print(f"{'lowering one pruned program (us)':<48} {times[-1] * 1e6:>14.2f}")
    if not args.quick:
        cold, warm = start_times()
        print(f"{'azdsl run linear_sgd.az, cold start (s)':<48} {cold:>14.2f}")
        print(f"{'azdsl run linear_sgd.az, warm start (s)':<48} {warm:>14.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
