"""`azdsl compare CONFIG PROGRAM...`: programs with tuned learning rates on the final tasks."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "compare",
        help="compare programs on a config's final tasks, learning rates tuned on its select "
        "tasks",
        description="Score several programs (an evolved one, examples/logistic_sgd.az, "
        "examples/neural_net.az, ...) on the final tasks of an experiment config. Each "
        "program's learning-rate literal (a Setup `sK = c` that Learn multiplies by and "
        "nothing else writes) is tuned first: every grid value and the program's own value "
        "are tried on the select tasks and the best is kept. Prints mean ± std over the final "
        "tasks (accuracy in % for classification).",
    )
    p.add_argument("config", metavar="CONFIG", help="the experiment config (.toml), or a run "
                   "folder: the config it ran with")
    p.add_argument("programs", nargs="+", metavar="PROGRAM", help=".az program files")
    p.add_argument("--grid", type=_grid, default=None, metavar="GRID",
                   help="learning rates to try: a list `0.001,0.01,0.1` or a log-spaced range "
                   "`LOW:HIGH:COUNT` (default 1e-3:1:7)")
    p.add_argument("--markdown", action="store_true", help="print a markdown table")
    p.add_argument("--seed", type=int, default=0, metavar="S",
                   help="the evaluation seed (keys random ops; default 0)")
    p.add_argument("--backend", choices=("vm", "interp", "jit"), default="vm")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="also print every program's select fitness for each learning rate")
    p.set_defaults(func=run)


def _grid(text: str) -> tuple[float, ...]:
    from azdsl.running.compare import log_grid

    try:
        if ":" in text:
            low, high, count = text.split(":")
            return log_grid(float(low), float(high), int(count))
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected `a,b,c` or `LOW:HIGH:COUNT` with 0 < LOW <= HIGH: {text!r}") from None
    if not values or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected finite learning rates: {text!r}")
    return values


def run(args: argparse.Namespace) -> int:
    from azdsl.commands.fmt import read_source
    from azdsl.language.parse import parse
    from azdsl.runfolder import config_of
    from azdsl.running.compare import DEFAULT_GRID, all_classification, compare, format_table
    from azdsl.running.evaluate import check_program
    from azdsl.running.fitness import user_fitness
    from azdsl.search.evolve import make_tasks

    config = config_of(args.config)
    select = make_tasks(config.select_tasks, None)
    final = make_tasks(config.final_tasks, None)
    programs = []
    for file in args.programs:
        program = parse(read_source(file), file)
        check_program(program, select + final)
        programs.append((Path(file).stem if file != "-" else "stdin", program))
    entries = compare(programs, select, final, args.grid or DEFAULT_GRID, seed=args.seed,
                      backend=args.backend, max_abs_error=config.max_abs_error,
                      fitness=config.fitness)
    classification = all_classification(final) and user_fitness(config.fitness) is None
    if args.verbose:
        for entry in entries:
            where = "no learning-rate literal" if entry.position is None else (
                f"learning rate: Setup instruction {entry.position + 1}")
            print(f"{entry.name}: {where}", file=sys.stderr)
            for rate, fitness in entry.grid_scores:
                print(f"  lr {rate:.3g}: select {fitness:.6f}", file=sys.stderr)
    sys.stdout.write(format_table(entries, classification=classification,
                                  markdown=args.markdown))
    for role, tasks in (("select_tasks", config.select_tasks), ("final_tasks", config.final_tasks)):
        if tasks.scored_on(role):  # scores on tasks the programs may have been evolved on
            print(f"note: {role.split('_')[0]} scores are on {tasks.scored_on(role)}",
                  file=sys.stderr)
    return 0
