"""`azdsl ablate CONFIG PROGRAM`: each instruction's worth, removed one at a time, paired by
task."""

from __future__ import annotations

import argparse
import sys
from typing import Any

_SETS = ("final", "select", "search")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "ablate",
        help="score a program with each of its instructions removed, paired task by task",
        description="Simplify PROGRAM, then score it on a config's final tasks (or --tasks "
        "select / search) as it is and once per live instruction with that instruction "
        "removed, all with the same tasks and evaluation seed. Prints, the most harmful "
        "removal first, each removal's fitness and its paired change from the whole program "
        "(mean ± standard error over the tasks; tasks better / worse). Run it with the configs "
        "of several task variants to see which instructions a program needs where.",
    )
    p.add_argument("config", metavar="CONFIG", help="the experiment config (.toml), or a run "
                   "folder: the config it ran with")
    p.add_argument("program", metavar="PROGRAM", help="the .az program file (- for stdin)")
    p.add_argument("--tasks", choices=_SETS, default="final",
                   help="the config's task set to score on (default final)")
    p.add_argument("--seed", type=int, default=0, metavar="S",
                   help="the evaluation seed (keys random ops; default 0)")
    p.add_argument("--backend", choices=("vm", "interp", "jit"), default="vm")
    p.add_argument("--markdown", action="store_true", help="print a markdown table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from azdsl.commands.fmt import read_source
    from azdsl.language.parse import parse
    from azdsl.language.printer import unparse
    from azdsl.runfolder import config_of
    from azdsl.running.ablation import ablate, format_ablation
    from azdsl.running.compare import all_classification
    from azdsl.running.evaluate import check_program
    from azdsl.running.fitness import user_fitness
    from azdsl.search.evolve import make_tasks

    config = config_of(args.config)
    task_set = {"final": config.final_tasks, "select": config.select_tasks,
                "search": config.search_tasks}[args.tasks]
    tasks = make_tasks(task_set, None)
    program = parse(read_source(args.program), args.program)
    check_program(program, tasks)
    result = ablate(program, tasks, seed=args.seed, backend=args.backend,
                    max_abs_error=config.max_abs_error, fitness=config.fitness)
    print(f"# {args.program}, simplified:", file=sys.stderr)
    print(unparse(result.program, comments=False), file=sys.stderr, end="")
    sys.stdout.write(format_ablation(result, classification=all_classification(tasks)
                                     and user_fitness(config.fitness) is None,
                                     markdown=args.markdown))
    role = f"{args.tasks}_tasks"
    if task_set.scored_on(role):
        print(f"note: {args.tasks} scores are on {task_set.scored_on(role)}", file=sys.stderr)
    return 0
