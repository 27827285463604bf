"""Search throughput and time to solve on the paper's demo, beside the C++ original's figures.

    python benchmarks/bench_search.py                 # throughput, FEC on and off
    python benchmarks/bench_search.py --solve 1 2 3   # also time to solve for these seeds
    python benchmarks/bench_search.py --fec-individuals 0 --nofec-individuals 0 \
        --random-individuals 200000 --hurdles-individuals 30000  # the rows below only

`--random-individuals N`: the demo with evolution and with random search, back to back, and
their ratio. `--hurdles-individuals N`: examples/projected_binary.toml (one experiment) with
hurdles off and on, back to back: CPU time and train steps per child.

Throughput counts individuals (children evaluated, cache hits included) per CPU second of one
process (time.process_time), as BENCHMARKS.md does; Numba compiles before the clock starts.
The original's figures are from a quiet 2-vCPU AMD EPYC (Zen 3) at 2.4 GHz; a busy machine
slows everything down, so compare figures measured back to back on the same machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from azdsl.search.config import Config, load_config  # noqa: E402
from azdsl.search.evolve import NoHooks, Search  # noqa: E402

ORIGINAL = {
    "fec": 26_100,  # demo, FEC on, 815,000 individuals
    "nofec": 20_800,  # demo, FEC off, 210,000 individuals
    "nonlinear": 13_700,  # nonlinear repair, 111,000 individuals
    "solve": {1: (120, 4), 2: (61, 2), 3: (379, 12)},  # seed: (CPU s, experiments)
}


def one_experiment(config: Config, individuals: int, fec: bool) -> Config:
    return replace(
        config,
        fec=replace(config.fec, enabled=fec),
        budget=replace(config.budget, max_train_steps=0, max_individuals=individuals,
                       max_experiments=1, sufficient_fitness=None),
        progress_every=10**12, checkpoint_seconds=0.0,
    )


def warm(config: Config) -> None:
    """Compile (or load from Numba's cache) everything a search runs."""
    search = Search(one_experiment(config, config.population_size + 2000, True), 12345, "vm")
    search.run()


class LastRecord(NoHooks):
    """Keeps the last progress record (an experiment's, with done = True, comes at its end)."""

    record: dict[str, Any]

    def progress(self, record: dict[str, Any]) -> None:
        self.record = record


def measure(config: Config, individuals: int, fec: bool, seed: int) -> tuple[float, dict[str, Any]]:
    """(CPU seconds, the last progress record) of one experiment of `individuals`."""
    hooks = LastRecord()
    search = Search(one_experiment(config, individuals, fec), seed, "vm", hooks)
    start = time.process_time()
    search.run()
    return time.process_time() - start, hooks.record


def throughput(config: Config, individuals: int, fec: bool, seed: int) -> tuple[float, float]:
    """(individuals per CPU second, CPU seconds) of one experiment of `individuals`."""
    seconds, _ = measure(config, individuals, fec, seed)
    return individuals / seconds, seconds


def random_vs_evolution(demo: Config, individuals: int, seed: int) -> None:
    """The demo (FEC on) with evolution, then random search: individuals per CPU second."""
    print(f"\n{'demo, FEC on':<18} {'individuals':>11} {'CPU s':>7} {'azdsl ind/s':>12}")
    rates = []
    for method in ("evolution", "random"):
        rate, secs = throughput(replace(demo, method=method), individuals, True, seed)
        rates.append(rate)
        print(f"{method:<18} {individuals:>11,} {secs:>7.1f} {rate:>12,.0f}")
    print(f"random / evolution: {rates[1] / rates[0]:.2f} (target: at least 0.5)")


def hurdles_off_and_on(individuals: int, seed: int) -> None:
    """examples/projected_binary.toml with hurdles off, then on: CPU time per child."""
    config = load_config(ROOT / "examples" / "projected_binary.toml")
    warm(config)
    print(f"\n{'projected_binary':<18} {'individuals':>11} {'CPU s':>7} {'CPU ms/child':>12} "
          f"{'steps/child':>11} {'stopped':>8}")
    per_child = []
    for enabled in (False, True):
        hurdled = replace(config, hurdles=replace(config.hurdles, enabled=enabled))
        secs, record = measure(hurdled, individuals, True, seed)
        per_child.append(secs / individuals)
        print(f"{'hurdles ' + ('on' if enabled else 'off'):<18} {individuals:>11,} "
              f"{secs:>7.1f} {1000 * secs / individuals:>12.3f} "
              f"{record['train_steps'] / individuals:>11.1f} {record['hurdle_stopped']:>8,}")
    print(f"hurdles on / off, CPU per child: {per_child[1] / per_child[0]:.2f} "
          "(target: below 1)")


def solve(config: Config, seed: int) -> tuple[float, int, float, int]:
    """(CPU seconds, experiments, final fitness, individuals) of the full demo."""
    search = Search(replace(config, progress_every=10**12, checkpoint_seconds=0.0), seed,
                    "vm")
    start = time.process_time()
    result = search.run()
    return (time.process_time() - start, len(result.experiments), result.final_fitness,
            result.individuals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fec-individuals", type=int, default=815_000)
    parser.add_argument("--nofec-individuals", type=int, default=210_000)
    parser.add_argument("--nonlinear-individuals", type=int, default=0,
                        help="also the nonlinear repair workload (0: skip)")
    parser.add_argument("--solve", type=int, nargs="*", default=[],
                        help="seeds to run the full demo for (time to solve)")
    parser.add_argument("--random-individuals", type=int, default=0,
                        help="also the demo with evolution and random search (0: skip)")
    parser.add_argument("--hurdles-individuals", type=int, default=0,
                        help="also projected_binary.toml, hurdles off and on (0: skip)")
    args = parser.parse_args()
    demo = load_config(ROOT / "examples" / "demo.toml")
    cpu = os.cpu_count()
    print(f"azdsl search benchmark, {cpu} CPUs, one process")
    warm(demo)

    rows = []
    if args.fec_individuals:
        rate, secs = throughput(demo, args.fec_individuals, True, args.seed)
        rows.append(("demo, FEC on", args.fec_individuals, rate, secs, ORIGINAL["fec"]))
    if args.nofec_individuals:
        rate, secs = throughput(demo, args.nofec_individuals, False, args.seed)
        rows.append(("demo, FEC off", args.nofec_individuals, rate, secs, ORIGINAL["nofec"]))
    if args.nonlinear_individuals:
        nonlinear = load_config(ROOT / "examples" / "nonlinear_repair.toml")
        warm(nonlinear)
        rate, secs = throughput(nonlinear, args.nonlinear_individuals, False, 100001)
        rows.append(("nonlinear repair", args.nonlinear_individuals, rate, secs,
                     ORIGINAL["nonlinear"]))
    if rows:
        print(f"\n{'workload':<18} {'individuals':>11} {'CPU s':>7} {'azdsl ind/s':>12} "
              f"{'original':>9} {'ratio':>6}")
    for name, count, rate, secs, original in rows:
        print(f"{name:<18} {count:>11,} {secs:>7.1f} {rate:>12,.0f} {original:>9,} "
              f"{rate / original:>6.2f}")

    if args.random_individuals:
        random_vs_evolution(demo, args.random_individuals, args.seed)
    if args.hurdles_individuals:
        hurdles_off_and_on(args.hurdles_individuals, args.seed)

    if args.solve:
        print(f"\n{'seed':>4} {'CPU s':>7} {'experiments':>11} {'individuals':>12} "
              f"{'final fitness':>13}   original (seeds 1-3: CPU s, experiments)")
        for seed in args.solve:
            secs, experiments, final, individuals = solve(demo, seed)
            original = ORIGINAL["solve"].get(seed)
            note = f"{original[0]} s, {original[1]}" if original else "-"
            print(f"{seed:>4} {secs:>7.1f} {experiments:>11} {individuals:>12,} "
                  f"{final:>13.6f}   {note}", flush=True)


if __name__ == "__main__":
    main()
