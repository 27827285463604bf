"""`azdsl experiment NAME --seeds 1-10 --out DIR [--jobs N] [--budget-scale X] [--list]`: a
shipped experiment, every cell and seed a resumable run folder, results tables in DIR."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from azdsl.commands._args import positive
from azdsl.errors import AzdslError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "experiment",
        help="run a shipped experiment of the paper over many seeds, resumably, with tables",
        description="Run one of the shipped experiments (`--list` shows them): each of its "
        "cells (a config of examples/) for every seed, as the run folder DIR/CELL/seed-N "
        "that `azdsl evolve CONFIG --seed N --islands 1` makes, several runs at a time. "
        "The same command again (after Ctrl-C, a kill or in a new session) resumes the "
        "unfinished runs from their checkpoints and skips the finished ones. DIR/results.json "
        "and DIR/results.md (printed at the end) give each cell's success rate and each "
        "seed's fitnesses, individuals and CPU time. See `azdsl docs experiments`.",
    )
    p.add_argument("name", nargs="?", metavar="NAME", help="the experiment (e.g. fig4)")
    p.add_argument("--seeds", type=_seeds, default=None, metavar="SEEDS",
                   help="the root seeds: 1-10, 3, 1,4,7-9 (default: the experiment's own)")
    p.add_argument("--out", metavar="DIR", help="the experiment's folder (new, or one this "
                   "command made before: it continues there)")
    p.add_argument("--jobs", type=positive, default=None, metavar="N",
                   help="runs at a time, each in its own process (default: every core)")
    p.add_argument("--budget-scale", type=_scale, default=1.0, metavar="X",
                   help="multiply every run's budget (individuals, train steps, seconds) by "
                   "X; a folder keeps the scale it was started with (default 1)")
    p.add_argument("--cells", type=_names, default=None, metavar="NAMES",
                   help="run only these cells, comma-separated (the tables still show every "
                   "cell's seeds; default: all)")
    p.add_argument("--list", action="store_true", help="list the experiments and their cells")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=run)


def _seeds(text: str) -> tuple[int, ...]:
    from azdsl.experiments.definitions import parse_seeds

    try:
        return parse_seeds(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _names(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    if not names:
        raise argparse.ArgumentTypeError("no cell names given")
    return names


def _scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a number above 0, got {text!r}")
    return value


def run(args: argparse.Namespace) -> int:
    from azdsl.commands.evolve import stop_on_signal
    from azdsl.experiments.definitions import EXPERIMENTS, experiment
    from azdsl.experiments.runner import Driver, Status
    from azdsl.scale.workers import local_cores

    if args.list:
        sys.stdout.write(listing(EXPERIMENTS.values()))
        return 0
    if args.name is None or args.out is None:
        raise AzdslError("give an experiment and a folder: azdsl experiment NAME --out DIR "
                         f"(the experiments: {', '.join(EXPERIMENTS)}; --list describes them)")
    chosen = experiment(args.name)
    seeds = args.seeds if args.seeds is not None else chosen.seeds
    known = [cell.name for cell in chosen.cells]
    unknown = [name for name in args.cells or () if name not in known]
    if unknown:
        raise AzdslError(f"{args.name} has no cell {', '.join(map(repr, unknown))}; its cells "
                         f"are: {', '.join(known)}")
    driver = Driver(chosen, Path(args.out), seeds, jobs=args.jobs or local_cores(),
                    budget_scale=args.budget_scale, status=Status(quiet=args.quiet),
                    cells=args.cells)
    with stop_on_signal() as stop:
        summary = driver.run(stop)
    sys.stdout.write(summary.markdown)
    if summary.errors:
        print(f"azdsl: error: {len(summary.errors)} run(s) failed (see above and "
              f"{Path(args.out) / 'results.md'}); once mended, the same command continues "
              "them", file=sys.stderr)
        return 1
    if summary.stopped:
        print(f"stopped; {summary.unfinished} run(s) unfinished: the same command continues "
              "them", file=sys.stderr)
        return 130
    return 0


def listing(experiments: Any) -> str:
    """The experiments, their cells and budgets (`--list`)."""
    from azdsl.experiments.definitions import format_seeds
    from azdsl.experiments.results import budget, budget_text

    lines = []
    for e in experiments:
        lines += [f"{e.name}: {e.title}", f"  reproduces {e.reproduces}",
                  f"  success: {e.success.describe()}; default seeds {format_seeds(e.seeds)}"]
        for cell in e.cells:
            changes = "".join(f", {k} = {v!r}" for k, v in cell.overrides)
            lines.append(f"  {cell.name}: {cell.config}{changes}; "
                         f"{budget_text(budget(cell, 1.0))}")
        lines.append("")
    return "\n".join(lines)
